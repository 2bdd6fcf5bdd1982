"""The memory of periodic crawls, in SQLite: dumps, articles, captures, failures, runs."""
