"""Per-host concurrency holds when many requests to one host are queued at once, a freed slot starts its next
download at once (Python 3.12+), and a download delay still paces a host (archiver.compat.Downloader)."""

import asyncio
import contextvars
import itertools
import json
import sys
import threading
import time

import pytest
from scrapy.core.downloader import Slot

from archiver.compat import start_download
from tests.loopback import QuietHandler, runspider, serving


def burst(tmp_path, downloader: str | None) -> tuple[list[int], int]:
    """Run the burst spider (20 URLs at once, 3 per host allowed); the statuses and the server's peak in flight."""
    lock = threading.Lock()
    held = {"now": 0, "most": 0}

    class Slow(QuietHandler):
        def do_GET(self):
            with lock:
                held["now"] += 1
                held["most"] = max(held["most"], held["now"])
            time.sleep(0.2)
            with lock:
                held["now"] -= 1
            self.reply(200, b"ok")

    out = tmp_path / f"statuses-{downloader or 'profile'}.json"
    settings = ["-s", f"DOWNLOADER={downloader}"] if downloader else []
    with serving(Slow) as host:
        proc = runspider("burst.py", tmp_path, "-a", f"base=http://{host}", "-a", "n=20", "-a", f"out={out}",
                         "-s", "ROBOTSTXT_OBEY=False", "-s", "AUTOTHROTTLE_ENABLED=False",
                         "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=3", *settings)  # fmt: skip
    assert out.exists(), proc.stderr[-3000:]
    return json.loads(out.read_text()), held["most"]


def test_a_burst_to_one_host_keeps_its_concurrency_limit(tmp_path):
    statuses, most = burst(tmp_path, None)  # the project profile: archiver.compat.Downloader
    assert statuses == [200] * 20
    assert most == 3


def test_scrapys_own_downloader_lets_the_burst_through(tmp_path):
    """Why archiver.compat exists; if Scrapy fixes its downloader this fails, and the class can go."""
    statuses, most = burst(tmp_path, "scrapy.core.downloader.Downloader")
    assert statuses == [200] * 20
    assert most > 3


def test_a_burst_with_a_download_delay_is_paced(tmp_path):
    """With DOWNLOAD_DELAY, Scrapy's own pacing decides when each request leaves."""
    lock = threading.Lock()
    arrivals: list[float] = []

    class Stamped(QuietHandler):
        def do_GET(self):
            if self.path != "/start":
                with lock:
                    arrivals.append(time.monotonic())
            self.reply(200, b"ok")

    out = tmp_path / "statuses.json"
    with serving(Stamped) as host:
        proc = runspider("burst.py", tmp_path, "-a", f"base=http://{host}", "-a", "n=4", "-a", f"out={out}",
                         "-s", "ROBOTSTXT_OBEY=False", "-s", "AUTOTHROTTLE_ENABLED=False",
                         "-s", "DOWNLOAD_DELAY=0.5", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False")  # fmt: skip
    assert json.loads(out.read_text()) == [200] * 4, proc.stderr[-3000:]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 3 and min(gaps) >= 0.4, gaps


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks (asyncio.eager_task_factory) are 3.12+")
def test_a_freed_slot_sends_its_next_request_in_the_same_turn(tmp_path):
    """One request at a time to a host: each next download starts in the turn the previous answer came back in."""

    class Fast(QuietHandler):
        def do_GET(self):
            self.reply(200, b"ok")

    out = tmp_path / "turns.json"
    with serving(Fast) as host:
        proc = runspider("turns.py", tmp_path, "-a", f"base=http://{host}", "-a", "n=6", "-a", f"out={out}",
                         "-s", "ROBOTSTXT_OBEY=False", "-s", "AUTOTHROTTLE_ENABLED=False",
                         "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1")  # fmt: skip
    assert out.exists(), proc.stderr[-3000:]
    log = json.loads(out.read_text())
    assert len(log) == 6
    for done, following in itertools.pairwise(log):
        assert following["start"] == done["end"], log


async def _transfer(slot: Slot, request: object, log: list, first: asyncio.Future, second: asyncio.Future) -> str:
    """Shaped like Scrapy's `_download`: counts itself transferring, waits, and frees its place when done."""
    slot.transferring.add(request)
    try:
        log.append("started")
        log.append(await first)
        try:
            await second
        except ValueError as exc:
            log.append(f"caught {exc}")
        return "done"
    finally:
        slot.transferring.remove(request)


def _slot() -> Slot:
    return Slot(concurrency=2, delay=0, jitter=0)


@pytest.mark.parametrize("outcome", ["result", "exception"])
def test_start_download_counts_the_request_at_once_and_frees_it_when_done(outcome):
    async def main() -> tuple[list, str, int, int]:
        loop = asyncio.get_running_loop()
        slot, request = _slot(), object()
        first, second, log = loop.create_future(), loop.create_future(), []
        task = start_download(_transfer(slot, request, log, first, second), slot, request)
        free_at_once = slot.free_transfer_slots()  # before the loop turned: a burst cannot pass the limit
        first.set_result("first")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log == ["started", "first"]
        if outcome == "result":
            second.set_result(None)
        else:
            second.set_exception(ValueError("boom"))
        result = await task
        return log, result, free_at_once, slot.free_transfer_slots()

    log, result, free_at_once, free_after = asyncio.run(main())
    expected = ["started", "first"] if outcome == "result" else ["started", "first", "caught boom"]
    assert (log, result) == (expected, "done")
    assert (free_at_once, free_after) == (1, 2)


def test_start_download_runs_the_coroutine_as_its_own_task_in_its_own_context():
    seen = contextvars.ContextVar("seen", default="unset")

    async def first_step(record: dict) -> None:
        record["task"] = asyncio.current_task()
        seen.set("set by the new task")
        await asyncio.sleep(0)
        record["after"] = asyncio.current_task()

    async def main() -> tuple[dict, asyncio.Task, asyncio.Task | None, str]:
        record: dict = {}
        slot = _slot()
        task = start_download(first_step(record), slot, object())
        caller = asyncio.current_task()
        await task
        return record, task, caller, seen.get()

    record, task, caller, value = asyncio.run(main())
    assert record["task"] is task and record["after"] is task and caller is not task
    assert value == "unset"


def test_start_download_finishes_a_coroutine_that_never_waits():
    async def no_wait(log: list) -> str:
        log.append("all")
        return "value"

    async def raises() -> None:
        raise ValueError("at once")

    async def main() -> tuple[list, str, BaseException | None, int]:
        log: list = []
        slot = _slot()
        task = start_download(no_wait(log), slot, object())
        failing = start_download(raises(), slot, object())
        result = await task
        errors = await asyncio.gather(failing, return_exceptions=True)
        return log, result, errors, slot.free_transfer_slots()

    log, result, (error,), free = asyncio.run(main())
    assert (log, result, free) == (["all"], "value", 2)
    assert isinstance(error, ValueError) and str(error) == "at once"


def test_start_download_cancelled_before_its_first_turn_frees_its_place():
    async def cancellable(log: list, fut: asyncio.Future) -> None:
        try:
            await fut
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def main() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        fut, log, slot = loop.create_future(), [], _slot()
        task = start_download(cancellable(log, fut), slot, object())
        task.cancel()  # before the task's first turn
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # done callbacks run on the next turn
        return task.cancelled(), slot.free_transfer_slots()

    assert asyncio.run(main()) == (True, 2)
