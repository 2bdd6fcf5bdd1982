"""The extraction process pool: in a real `scrapy runspider` crawl, and its failure modes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from archiver.dw.page import extract_page
from archiver.extraction.pool import ExtractionFailed, ExtractionPool

SAMPLES = Path(__file__).parent / "data" / "dw-samples" / "html"
NEW = "de_a-68117411_new-layout_2024-01-30.html"
OLD = "de_a-65106525_old-layout_2023-03.html"

SPIDER = """
import scrapy

from archiver.dw.page import ExtractError
from archiver.extraction.pool import ExtractionPool


class PagesSpider(scrapy.Spider):
    name = "pages"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.extractor = ExtractionPool.from_crawler(crawler)
        return spider

    async def start(self):
        for name in self.pages.split(","):
            yield scrapy.Request(f"{self.base}/{name}")

    async def parse(self, response):
        try:
            page = await self.extractor.extract(response.body, response.url)
        except ExtractError as exc:
            yield {"url": response.url, "error": exc.reason}
            return
        yield {
            "url": response.url,
            "title": page.title,
            "teaser": page.teaser,
            "subheadings": page.subheadings,
            "text": page.text,
            "workers": self.extractor.workers,
        }
"""


@pytest.fixture
def site(tmp_path):
    """A local HTTP server serving two real DW pages and an empty one."""
    root = tmp_path / "site"
    root.mkdir()
    for name in (NEW, OLD):
        shutil.copy(SAMPLES / name, root / name)
    (root / "empty.html").write_bytes(b"")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    server.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_extraction_in_a_real_scrapy_crawl(site, tmp_path):
    spider = tmp_path / "pages_spider.py"
    spider.write_text(SPIDER)
    out = tmp_path / "items.jsonl"
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", str(out),
               "-a", f"base={site}", "-a", f"pages={NEW},{OLD},empty.html",
               "-s", "ARCHIVER_EXTRACT_WORKERS=2", "-s", "LOG_LEVEL=INFO",
               "-s", "TELNETCONSOLE_ENABLED=False", "-s", "REMOTE_CONTROL_ENABLED=False"]  # fmt: skip
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "extraction workers stopped" in run.stderr  # closed on engine_stopped
    assert "'extractor/pages': 2" in run.stderr  # counted in the crawl's stats
    assert "'extractor/failed/error': 1" in run.stderr
    items = {Path(i["url"]).name: i for i in map(json.loads, out.read_text("utf-8").splitlines())}
    assert set(items) == {NEW, OLD, "empty.html"}

    new = items[NEW]
    assert new["title"] == "Russland-Wahl: Nadeschdin setzt auf ein Ende der Putin-Ära"
    assert new["text"].startswith("Tausende standen für ihn stundenlang in der Kälte")
    assert new["subheadings"][0] == "Wer ist Boris Nadeschdin?"
    assert "WhatsApp" not in new["text"] and "p.dw.com" not in new["text"]
    assert new["workers"] == 2
    # the worker returns exactly what extract_page returns in this process
    assert new["text"] == extract_page((SAMPLES / NEW).read_bytes(), new["url"]).text

    old = items[OLD]
    assert old["teaser"].startswith("Der Libanon ist pleite")
    assert "US-Dollar sind überall erwünscht" in old["subheadings"]
    # an error raised in the worker reaches the callback as itself
    assert items["empty.html"]["error"] == "not an HTML document"


# --- failure modes, in-process with asyncio -------------------------------------------------------------------


def _die(html: bytes | str, url: str):
    os._exit(3)


def _hang(html: bytes | str, url: str):
    time.sleep(600)


def _nap(html: bytes | str, url: str) -> str:
    time.sleep(0.25)
    return url


def _pid(html: bytes | str, url: str) -> int:
    return os.getpid()


def _policy(html: bytes | str, url: str) -> tuple[int, int]:
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def _spin(html: bytes | str, url: str) -> str:
    until = time.process_time() + 0.1  # a tenth of a second of CPU: as long as the worker is kept from a core
    while time.process_time() < until:
        pass
    return url


def _chatty(html: bytes | str, url: str) -> str:
    print("noise on stdout " * 1000)  # what extraction code may do
    os.write(1, b"\x00" * 64)
    return url


def run(coro):
    return asyncio.run(coro)


def test_a_dead_worker_is_a_clear_error_and_the_pool_recovers():
    extractor = ExtractionPool(workers=1, func=_die)
    html = (SAMPLES / NEW).read_bytes()

    async def scenario():
        with pytest.raises(ExtractionFailed) as caught:
            await extractor.extract(html, "https://www.dw.com/de/x/a-68117411")
        assert caught.value.reason == "extraction worker process died"
        assert caught.value.url == "https://www.dw.com/de/x/a-68117411"
        extractor.func = extract_page
        return await extractor.extract(html, "https://www.dw.com/de/x/a-68117411")

    try:
        page = run(scenario())
    finally:
        extractor.close()
    assert page.title == "Russland-Wahl: Nadeschdin setzt auf ein Ende der Putin-Ära"


def test_a_worker_that_dies_between_pages_is_reaped_and_replaced():
    import signal

    extractor = ExtractionPool(workers=1, func=_pid)

    async def scenario():
        first = await extractor.extract(b"", "u")
        (worker,) = extractor._procs
        worker.process.send_signal(signal.SIGKILL)
        while not worker.gone:  # its answers pipe closes
            await asyncio.sleep(0.05)
        return first, worker, await extractor.extract(b"", "u")

    try:
        first, worker, second = run(scenario())
    finally:
        extractor.close()
    assert first == worker.process.pid != second
    assert worker.process.returncode == -signal.SIGKILL  # waited for: no zombie left behind


def test_a_page_past_the_time_limit_is_failed_and_its_worker_killed():
    extractor = ExtractionPool(workers=1, timeout=0.5, func=_hang)

    async def scenario():
        with pytest.raises(ExtractionFailed) as caught:
            await extractor.extract(b"<html></html>", "https://www.dw.com/zh/x/a-1")
        assert caught.value.reason == "timed out after 0.5 s"
        extractor.func, extractor.timeout = _pid, 60  # a new worker has to start: give it time
        return await extractor.extract(b"<html></html>", "https://www.dw.com/zh/x/a-1")

    try:
        pid = run(scenario())
    finally:
        extractor.close()
    assert pid != os.getpid()


@pytest.mark.skipif(
    not (hasattr(os, "SCHED_IDLE") and Path("/proc/self/stat").exists()), reason="Linux scheduling and /proc"
)
def test_time_a_worker_waits_for_a_core_does_not_count_against_the_limit():
    """An idle-priority worker sharing its one core with a busy process: the page waits ~2 s for it, then passes."""
    extractor = ExtractionPool(workers=1, timeout=0.5, func=_spin)
    hog = None
    try:
        extractor.start()
        (worker,) = extractor._procs
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(worker.process.pid, {core})
        spin = f"import os, time; os.sched_setaffinity(0, {{{core}}}); print(flush=True); t = time.time() + 2\n"
        hog = subprocess.Popen([sys.executable, "-c", spin + "while time.time() < t: pass"], stdout=subprocess.PIPE)
        hog.stdout.readline()  # it spins on that core now
        started = time.monotonic()
        assert run(extractor.extract(b"", "page")) == "page"
        assert time.monotonic() - started > 1.0  # it was kept waiting well past its 0.5 s
    finally:
        extractor.close()
        if hog is not None:
            hog.wait(10)


def extract_all(extractor: ExtractionPool, pages: int) -> list:
    """Pages named 0 .. pages-1 extracted at once in one event loop; the extractor closed after."""

    async def scenario():
        return await asyncio.gather(*(extractor.extract(b"", str(i)) for i in range(pages)))

    try:
        return run(scenario())
    finally:
        extractor.close()


def test_the_time_limit_counts_from_a_pages_start_not_from_its_wait_in_line():
    extractor = ExtractionPool(workers=1, timeout=1.5, func=_nap)  # 12 pages of 0.25 s: 3 s in line for the last
    assert extract_all(extractor, 12) == [str(i) for i in range(12)]


def test_work_is_spread_over_the_workers_off_this_process():
    extractor = ExtractionPool(workers=2, func=_pid)
    extractor.start()
    pids = set(extract_all(extractor, 40))
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_by_default_the_workers_leave_the_reactor_a_core():
    cores = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cores)})
        assert ExtractionPool().workers == 1  # never none
        if len(cores) >= 3:
            os.sched_setaffinity(0, set(sorted(cores)[:3]))
            assert ExtractionPool().workers == 2
    finally:
        os.sched_setaffinity(0, cores)
    assert ExtractionPool().workers == max(1, len(cores) - 1)
    assert ExtractionPool(workers=3).workers == 3  # ARCHIVER_EXTRACT_WORKERS, when set, is taken as it is


def test_a_worker_outlives_ctrl_c_and_exits_at_the_end_of_its_input():
    """Ctrl-C hits the crawl's whole process group: the workers leave stopping to the crawl."""
    import signal

    extractor = ExtractionPool(workers=1, func=_pid)
    try:
        extractor.start()
        (worker,) = extractor._procs
        worker.process.send_signal(signal.SIGINT)
        assert run(extractor.extract(b"", "u")) == worker.process.pid  # still there, still working
    finally:
        extractor.close()
    assert worker.process.returncode == 0  # it left on its own when its input closed, not killed


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_workers_run_at_idle_priority_unless_told_otherwise():
    """A worker takes a core only when nothing normally scheduled wants it (ARCHIVER_EXTRACT_IDLE_PRIORITY)."""
    ours = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    assert ours[0] != os.SCHED_IDLE
    assert extract_all(ExtractionPool(workers=1, func=_policy), 1) == [(os.SCHED_IDLE, ours[1])]
    assert extract_all(ExtractionPool(workers=1, func=_policy, idle=False), 1) == [ours]


def test_what_extraction_code_prints_does_not_reach_the_answers():
    assert extract_all(ExtractionPool(workers=1, func=_chatty), 5) == [str(i) for i in range(5)]


def test_a_closed_extractor_refuses_work():
    extractor = ExtractionPool(workers=1)
    extractor.close()
    with pytest.raises(ExtractionFailed, match="extractor is closed"):
        run(extractor.extract(b"<html></html>", "u"))


def test_a_worker_exits_when_the_crawl_that_started_it_is_killed():
    """`exit_with(pid)` (the pool's initializer): a crawl killed with -9 leaves no extraction worker behind."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    worker = subprocess.Popen(
        [sys.executable, "-c", f"from archiver.extraction.worker import exit_with; exit_with({parent.pid}, 0.1); "
         "import time; time.sleep(600)"]
    )  # fmt: skip
    try:
        time.sleep(0.5)
        assert worker.poll() is None  # alive while its crawl lives
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert worker.wait(timeout=30) == 0
    finally:
        for p in (parent, worker):
            if p.poll() is None:
                p.kill()


def test_a_worker_whose_crawl_stopped_listening_exits_quietly():
    """A crawl may close before a slow-starting worker is ready: its READY meets a closed pipe, and no traceback."""
    from archiver.extraction.worker import COMMAND

    read_end, write_end = os.pipe()
    os.close(read_end)  # the crawl is gone from the other end before the worker writes a byte
    command = [sys.executable, "-c", COMMAND.format(parent=os.getpid(), idle=False)]
    worker = subprocess.run(
        command, stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
    )
    os.close(write_end)
    assert worker.returncode == 0
    assert worker.stderr == ""
