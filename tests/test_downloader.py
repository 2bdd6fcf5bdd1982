"""Per-host concurrency holds when many requests to one host are queued at once (archiver.downloader)."""

import json
import threading
import time

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
