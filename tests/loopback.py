"""A small HTTP server on loopback and a `scrapy runspider` run against it, for tests of one Scrapy behaviour."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing; `reply` sends a whole response."""

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 in a thread; yields `host:port`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def runspider(spider: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`scrapy runspider tests/spiders/<spider>` in the project, loopback allowed, output in `tmp_path`."""
    command = [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "tests" / "spiders" / spider),
               "-s", "ARCHIVER_ALLOWED_HOSTS=127.0.0.1", "-s", "ARCHIVER_ALLOW_PRIVATE_ADDRESSES=1",
               "-s", f"ARCHIVER_OUTPUT_DIR={tmp_path}", *args]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
