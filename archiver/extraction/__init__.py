"""Text extraction off the reactor thread: the worker pool and the worker process."""
