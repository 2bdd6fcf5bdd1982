"""Runs `extract_page` in worker processes, off the reactor thread and on every core, for async Scrapy callbacks.

`await extractor.extract(body, url)` from a callback under the asyncio reactor. A worker that dies or a page
that takes longer than `ARCHIVER_EXTRACT_TIMEOUT` ends as `ExtractionFailed(url, reason)`, which the spider
records; the worker is then replaced, so later pages are extracted as usual.

Each worker is a child process fed through its stdin and answering on its stdout, both pipes served by the event
loop itself: no thread in the crawl process. (A ProcessPoolExecutor hands pages over through two threads of its
own, which take the GIL from the reactor thread several times per page.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pickle
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from scrapy import signals
from scrapy.crawler import Crawler

from archiver import config
from archiver.dw.page import PageText, extract_page
from archiver.errors import ArchiverError
from archiver.extraction.worker import COMMAND, READY, SIZE, frame

__all__ = ["ExtractionFailed", "ExtractionPool"]

logger = logging.getLogger(__name__)
ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
PIPE_SIZE = 1 << 20  # a page's frame fits the pipe in one write (Linux; best effort)
SPAWN_TIMEOUT = 120.0
MIN_EXTENSION = 0.05  # seconds: a time limit with less CPU time than this left is over


class ExtractionFailed(ArchiverError, RuntimeError):
    """A page could not be extracted: its worker died or it ran past the time limit; `url` names it."""

    @property
    def url(self) -> str:
        return self.subject


class _KilledForAnother(Exception):
    """A page lost its worker, which was killed because another page ran past the time limit."""


class _Died(Exception):
    """A worker exited before answering."""


@dataclass(eq=False)
class _Worker:
    """One worker process, its pipes (attached to the event loop on first use) and its pages in order."""

    process: subprocess.Popen
    ready: bool = False  # its READY byte was read
    killed: bool = False  # killed by us, for another page's timeout
    loop: asyncio.AbstractEventLoop | None = None
    writer: asyncio.WriteTransport | None = None
    attached: asyncio.Task | None = None  # connecting its pipes to the loop
    pending: deque[asyncio.Future] = field(default_factory=deque)
    buffer: bytearray = field(default_factory=bytearray)
    gone: bool = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.ready:
            self.ready = True
            del self.buffer[:1]  # READY
        while len(self.buffer) >= SIZE.size:
            (size,) = SIZE.unpack_from(self.buffer)
            if len(self.buffer) < SIZE.size + size:
                return
            answer = bytes(self.buffer[SIZE.size : SIZE.size + size])
            del self.buffer[: SIZE.size + size]
            if not self.pending:  # never asked for: nothing waits for it
                continue
            future = self.pending.popleft()
            if future.done():  # cancelled meanwhile
                continue
            try:
                ok, value = pickle.loads(answer)
            except Exception as exc:
                ok, value = False, RuntimeError(f"unreadable answer from extraction worker: {exc!r}")
            future.set_result(value) if ok else future.set_exception(value)

    def lost(self) -> None:
        """Its stdout closed: it exited or was killed; every page it still had fails."""
        self.gone = True
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(_KilledForAnother() if self.killed else _Died())

    @property
    def served(self) -> bool:
        """Its pipes belong to an event loop that still runs them (none yet, or a closed one: no)."""
        return self.loop is not None and not self.loop.is_closed()

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class _ResultPipe(asyncio.Protocol):
    def __init__(self, worker: _Worker) -> None:
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        self.worker.data_received(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.lost()


class ExtractionPool:
    """`workers` extraction processes, started on first use and shut down with the engine."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float | None = 60.0,
        func: Callable[[bytes | str, str], PageText] = extract_page,
        idle: bool = True,
    ) -> None:
        self.workers = max(1, workers or default_workers())
        self.idle = idle
        self.timeout = timeout or None
        self.func = func
        self._procs: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.crawler: Crawler | None = None  # its stats count pages and failures, when built from a crawler
        self.closed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPool:
        """Read the `ARCHIVER_EXTRACT_*` settings; close on `engine_stopped`."""
        settings = crawler.settings
        extractor = cls(
            workers=int(config.get(settings, "ARCHIVER_EXTRACT_WORKERS") or 0) or None,
            timeout=float(config.get(settings, "ARCHIVER_EXTRACT_TIMEOUT") or 0) or None,
            idle=config.get(settings, "ARCHIVER_EXTRACT_IDLE_PRIORITY"),
        )
        extractor.crawler = crawler
        crawler.signals.connect(extractor.close, signal=signals.engine_stopped)
        return extractor

    def start(self) -> None:
        """Start all worker processes now and wait until they are ready (otherwise the first pages pay for it)."""
        while len(self._procs) < self.workers:
            self._procs.append(self._spawn())
        for worker in self._procs:
            if not worker.ready:
                _wait_ready(worker)

    async def extract(self, html: bytes | str, url: str, feed_body: str | None = None) -> PageText:
        """`extract_page(html, url)` in a worker; `ExtractionFailed` if the worker dies or runs too long.

        With `feed_body`, the worker also scores the text against it (`PageText.agreement`), off the reactor.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            needs = f"ExtractionPool.extract needs the asyncio reactor (TWISTED_REACTOR = {ASYNCIO_REACTOR})"
            raise RuntimeError(needs) from None
        if self.closed:
            raise ExtractionFailed(url, "extractor is closed")
        self._bind(loop)
        assert self._semaphore is not None
        async with self._semaphore:  # pages queue here, so the time limit runs from a page's start
            try:
                page = await self._extract(html, url, feed_body)
            except ExtractionFailed as exc:
                self._count("extractor/failed" + ("/timeout" if "timed out" in exc.reason else "/worker_died"))
                raise
            except Exception:  # raised by extract_page itself (ExtractError), passed on as it is
                self._count("extractor/failed/error")
                raise
        self._count("extractor/pages")
        return page

    def _count(self, key: str) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)

    async def _extract(self, html: bytes | str, url: str, feed_body: str | None) -> PageText:
        page = frame((self.func, html, url, feed_body))
        for attempt in (1, 2):
            worker = await self._worker()
            future = asyncio.get_running_loop().create_future()
            worker.pending.append(future)
            assert worker.writer is not None
            worker.writer.write(page)
            try:
                return await self._answer(worker, future)
            except TimeoutError:
                self._retire(worker, kill=True)
                raise ExtractionFailed(url, f"timed out after {self.timeout:g} s") from None
            except _KilledForAnother:
                if attempt == 1:
                    continue  # its worker was killed for another page's timeout: try once more
                raise ExtractionFailed(url, "extraction worker was replaced twice") from None
            except _Died:
                self._retire(worker, kill=False)
                raise ExtractionFailed(url, "extraction worker process died") from None
        raise ExtractionFailed(url, "extraction worker was replaced twice")  # pragma: no cover

    async def _answer(self, worker: _Worker, future: asyncio.Future) -> PageText:
        """The page's answer within the time limit, which counts its worker's CPU time while that worker is runnable:
        time spent waiting for a core (idle priority on a busy machine) is not held against the page."""
        if self.timeout is None:
            return await future
        limit, start = self.timeout, cpu_state(worker.process.pid)
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), limit)
                except TimeoutError:
                    now = cpu_state(worker.process.pid)
                    if start is None or now is None or not now[1]:
                        raise  # no figures, or blocked rather than computing or waiting for a core
                    limit = self.timeout - (now[0] - start[0])
                    if limit < MIN_EXTENSION:
                        raise
        finally:
            future.cancel()  # given up on (time limit, cancelled): its answer, if any comes, is dropped

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the workers' pipes from `loop`; workers attached to an earlier loop (a test's) are replaced."""
        if self._loop is loop:
            return
        for worker in self._procs:
            if worker.loop is not None and worker.loop is not loop:
                self._retire(worker, kill=True)
        self._loop = loop
        self._semaphore = asyncio.Semaphore(2 * self.workers)  # two per worker: one running, one ready

    async def _worker(self) -> _Worker:
        """The live worker with the fewest pages, its pipes attached to this loop; a new one if any is missing."""
        for gone in [w for w in self._procs if w.gone]:  # exited between pages: reaped, its pipes closed
            self._retire(gone, kill=False)
        while len(self._procs) < self.workers:
            self._procs.append(self._spawn())
        worker = min(self._procs, key=lambda w: len(w.pending))
        if worker.attached is None:
            worker.attached = asyncio.ensure_future(_attach(worker))
        await worker.attached
        return worker

    def _spawn(self) -> _Worker:
        # A fresh interpreter on this one's import path, never a fork of the reactor's process.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        command = [sys.executable, "-c", COMMAND.format(parent=os.getpid(), idle=self.idle)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        assert process.stdin is not None
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        return _Worker(process)

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        """Drop a worker (killing it if `kill`); its other pages fail, and the next page starts a new one."""
        if worker not in self._procs:
            return  # retired already (each of a dead worker's pages reports it)
        self._procs.remove(worker)
        logger.warning("extraction worker replaced (%s)", "page timed out" if kill else "worker died")
        if kill:
            worker.kill()
        _close_pipes(worker)
        if not worker.served:
            worker.lost()
        _reap(worker.process, 0 if kill else 1.0)

    def close(self, grace: float = 5.0) -> None:
        """Stop the workers: pending pages are cancelled, a page still running after `grace` seconds is killed."""
        self.closed = True
        workers, self._procs = self._procs, []
        for worker in workers:
            for future in worker.pending:
                future.cancel()
            _close_pipes(worker)  # end of input: a worker exits once its page is done
        deadline = time.monotonic() + grace
        for worker in workers:
            _reap(worker.process, max(0.0, deadline - time.monotonic()))
        if workers:
            logger.info("extraction workers stopped")


async def _attach(worker: _Worker) -> None:
    """Serve a worker's stdin and stdout from the running loop."""
    loop = asyncio.get_running_loop()
    assert worker.process.stdin is not None and worker.process.stdout is not None
    worker.loop = loop
    worker.writer, _ = await loop.connect_write_pipe(asyncio.Protocol, worker.process.stdin)
    await loop.connect_read_pipe(lambda: _ResultPipe(worker), worker.process.stdout)


def _close_pipes(worker: _Worker) -> None:
    """Close a worker's stdin now (it exits once its page is done); its stdout closes when it exits."""
    if worker.writer is not None and worker.served and not worker.writer.is_closing():
        worker.writer.abort()  # off the loop at once; the file itself is closed on the loop's next turn...
    pipes = [worker.process.stdin]
    if not worker.served:
        pipes.append(worker.process.stdout)  # no loop will read it any more
    for pipe in pipes:
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()  # ...so close it here, for the worker to see the end of its input now


def _reap(process: subprocess.Popen, grace: float) -> None:
    """Wait up to `grace` seconds for a worker to exit, then kill it; never leaves a zombie."""
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(worker: _Worker, timeout: float = SPAWN_TIMEOUT) -> None:
    """Block until a new worker has imported everything and says READY."""
    assert worker.process.stdout is not None
    fd = worker.process.stdout.fileno()
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready or os.read(fd, 1) != READY:
        raise RuntimeError(f"extraction worker {worker.process.pid} did not start within {timeout:g} s")
    worker.ready = True


def cpu_state(pid: int) -> tuple[float, bool] | None:
    """CPU seconds process `pid` has used (user + system), and whether it is running or waiting for a core (state R,
    not blocked or sleeping); None where `/proc/<pid>/stat` does not tell (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), fields[0] == b"R"


def default_workers() -> int:
    """One worker per core this process may run on, but for the core the reactor thread keeps busy; at least one.

    A worker on every core takes the reactor thread's core from it, and the crawl waits.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)
