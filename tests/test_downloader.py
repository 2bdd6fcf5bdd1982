"""Per-host concurrency holds when many requests to one host are queued at once, a freed slot starts its next
download at once, and a download delay still paces a host (archiver.downloader)."""

import asyncio
import itertools
import json
import threading
import time

import pytest

from archiver.downloader import start_now
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
    statuses, most = burst(tmp_path, None)  # the project profile: archiver.downloader.Downloader
    assert statuses == [200] * 20
    assert most == 3


def test_scrapys_own_downloader_lets_the_burst_through(tmp_path):
    """Why archiver.downloader exists; if Scrapy fixes its downloader this fails, and the class can go."""
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
                         "-s", "DOWNLOAD_DELAY=0.3", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False")  # fmt: skip
    assert json.loads(out.read_text()) == [200] * 4, proc.stderr[-3000:]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 3 and min(gaps) >= 0.25, gaps


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


async def _waits_twice(log: list, first: asyncio.Future, second: asyncio.Future) -> str:
    log.append("started")
    log.append(await first)
    try:
        await second
    except ValueError as exc:
        log.append(f"caught {exc}")
    return "done"


@pytest.mark.parametrize("outcome", ["result", "exception"])
def test_start_now_runs_the_first_step_at_once_and_the_rest_as_a_task(outcome):
    async def main() -> list:
        loop = asyncio.get_running_loop()
        first, second, log = loop.create_future(), loop.create_future(), []
        start_now(_waits_twice(log, first, second))
        assert log == ["started"]  # before the loop turned
        first.set_result("first")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log == ["started", "first"]
        if outcome == "result":
            second.set_result(None)
        else:
            second.set_exception(ValueError("boom"))
        for _ in range(3):
            await asyncio.sleep(0)
        return log

    log = asyncio.run(main())
    assert log == ["started", "first"] if outcome == "result" else ["started", "first", "caught boom"]


def test_start_now_finishes_a_coroutine_that_never_waits_without_a_task():
    async def no_wait(log: list) -> None:
        log.append("all")

    async def main() -> tuple[list, int]:
        before = len(asyncio.all_tasks())
        log: list = []
        start_now(no_wait(log))
        return log, len(asyncio.all_tasks()) - before

    assert asyncio.run(main()) == (["all"], 0)


def test_start_now_hands_a_cancellation_to_the_coroutine():
    async def cancellable(log: list, fut: asyncio.Future) -> None:
        try:
            await fut
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def main() -> list:
        loop = asyncio.get_running_loop()
        fut, log = loop.create_future(), []
        before = asyncio.all_tasks()
        start_now(cancellable(log, fut))
        (task,) = asyncio.all_tasks() - before
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return log

    assert asyncio.run(main()) == ["cancelled"]
