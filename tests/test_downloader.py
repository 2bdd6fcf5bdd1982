"""Per-host concurrency holds when many requests to one host are queued at once (archiver.downloader)."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Slow(BaseHTTPRequestHandler):
    """Answers every GET after 0.2 s and records the most requests it held at once."""

    lock = threading.Lock()
    in_flight = 0
    most = 0

    def do_GET(self):
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most = max(cls.most, cls.in_flight)
        time.sleep(0.2)
        with cls.lock:
            cls.in_flight -= 1
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def burst(tmp_path, downloader: str | None) -> tuple[list[int], int]:
    """Run the burst spider (20 URLs at once, 3 per host allowed); the statuses and the server's peak."""

    class Handler(Slow):
        lock = threading.Lock()
        in_flight = 0
        most = 0

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / f"statuses-{downloader or 'scrapy'}.json"
    settings = ["-s", f"DOWNLOADER={downloader}"] if downloader else []
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "tests/spiders/burst.py"),
             "-a", f"base=http://127.0.0.1:{server.server_port}", "-a", "n=20", "-a", f"out={out}",
             "-s", "ARCHIVER_ALLOWED_HOSTS=127.0.0.1", "-s", "ARCHIVER_ALLOW_PRIVATE_ADDRESSES=1",
             "-s", "ARCHIVER_OUTPUT_DIR=" + str(tmp_path), "-s", "ROBOTSTXT_OBEY=False",
             "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=3", *settings],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert out.exists(), proc.stderr[-3000:]
    return json.loads(out.read_text()), Handler.most


def test_a_burst_to_one_host_keeps_its_concurrency_limit(tmp_path):
    statuses, most = burst(tmp_path, None)  # the project profile: archiver.downloader.Downloader
    assert statuses == [200] * 20
    assert most == 3


def test_scrapys_own_downloader_lets_the_burst_through(tmp_path):
    """Why archiver.downloader exists; if Scrapy fixes its downloader this fails, and the class can go."""
    statuses, most = burst(tmp_path, "scrapy.core.downloader.Downloader")
    assert statuses == [200] * 20
    assert most > 3
