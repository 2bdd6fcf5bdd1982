"""One run: the jobs, the plan, assembling items and the report."""
