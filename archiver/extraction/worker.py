"""The worker side of `archiver.extraction.pool`: a child process that extracts the pages it reads on stdin.

Frames both ways are a pickle's length (8 bytes, big-endian) then the pickle: in, `(func, html, url, feed_body)`;
out, `(True, PageText)` or `(False, exception)`. Before the first answer the worker writes one READY byte. This
module imports no Scrapy, so a worker starts in the time it takes to import trafilatura.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import time
from typing import BinaryIO

from archiver.dw.textmatch import extract_and_compare
from archiver.tuning.priority import run_idle

READY = b"R"
SIZE = struct.Struct("!Q")


def frame(obj: object) -> bytes:
    """`obj` pickled, behind its length."""
    data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return SIZE.pack(len(data)) + data


# A worker's command line: stdout is kept for the answers and pointed at stderr before anything is imported, so
# whatever the extraction code prints goes to stderr, never into the answers.
COMMAND = (
    "import os; fd = os.dup(1); os.dup2(2, 1); from archiver.extraction.worker import serve; "
    "serve({parent}, fd, idle={idle})"
)


def serve(parent: int, answers_fd: int, idle: bool = False) -> None:
    """A worker's main loop: one answer per page, in order, until stdin closes (or process `parent` is gone)."""
    exit_with(parent)
    if idle:
        run_idle()
    # Ctrl-C reaches the whole process group: the crawl decides when its workers stop (end of input, or kill),
    # so a graceful shutdown still gets the pages in flight extracted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(answers_fd, "wb")
    try:
        answer_pages(sys.stdin.buffer, answers)
    except BrokenPipeError:  # the crawl stopped listening (it closed before this worker was ready): nothing to tell
        os._exit(0)  # not a normal exit, which would flush the broken pipe once more and print that


def answer_pages(pages: BinaryIO, answers: BinaryIO) -> None:
    """READY, then one answer per page read, in order, until the pages end."""
    answers.write(READY)
    answers.flush()
    while len(head := pages.read(SIZE.size)) == SIZE.size:
        func, html, url, feed_body = pickle.loads(pages.read(SIZE.unpack(head)[0]))
        try:
            answer = frame((True, extract_and_compare(func, html, url, feed_body)))
        except Exception as exc:
            try:
                answer = frame((False, exc))
            except Exception:  # an exception that does not pickle still reaches the crawl, as text
                answer = frame((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        answers.write(answer)
        answers.flush()


def exit_with(pid: int, interval: float = 1.0) -> None:
    """In a worker: exit once process `pid` is gone (a crawl killed with -9 leaves no workers behind, even busy)."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                continue

    threading.Thread(target=watch, name="exit-with-crawl", daemon=True).start()
