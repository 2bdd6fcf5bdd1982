"""ReplayWeb.page in headless Chromium: a loopback HTTP server (with byte ranges) beside a WACZ, driven by Playwright.

The parts come from the project's own install step, `.ci/replay-tools` (Chromium and CJK fonts from the system
packages, ReplayWeb.page's prebuilt ui.js and sw.js from its npm tarball); Playwright is a dev dependency and drives
the system Chromium (no browser download).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from warc_support import cache_dir

ROOT = Path(__file__).resolve().parents[1]
RWP_VERSION = "2.5.3"
CHROMIUM = os.environ.get("ARCHIVER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def replay_tools() -> Path:
    """The folder with ReplayWeb.page's ui.js and sw.js, after `.ci/replay-tools` made sure of every part."""
    folder = cache_dir() / f"replaywebpage-{RWP_VERSION}"
    env = os.environ | {"RWP_DIR": str(folder), "RWP_VERSION": RWP_VERSION, "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(ROOT / ".ci" / "replay-tools")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, f".ci/replay-tools failed: {run.stdout[-2000:]}{run.stderr[-2000:]}"
    assert (folder / "ui.js").is_file() and (folder / "sw.js").is_file() and Path(CHROMIUM).exists()
    return folder


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges, which ReplayWeb.page uses to read a WACZ it does not download whole."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def send_head(self):  # type: ignore[no-untyped-def]
        self._left = None  # the length of the range being sent, if one is
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        path = Path(self.translate_path(self.path))
        if m is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._left = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        left = self._left
        if left is None:
            return super().copyfile(source, outputfile)
        while left > 0:
            chunk = source.read(min(65536, left))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)
        return None


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """An HTTP server on a free loopback port serving `folder`; yields its base URL."""
    handler = functools.partial(RangeHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def replay_site(tools: Path, wacz: Path, folder: Path) -> Path:
    """A folder with ui.js, sw.js and the WACZ, ready for `page_html`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ui.js", "sw.js"):
        shutil.copy(tools / name, folder / name)
    shutil.copy(wacz, folder / "archive.wacz")
    return folder


def page_html(url: str) -> str:
    """An embedding page replaying one archived URL from ./archive.wacz, with the replay frame only."""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><script src="./ui.js"></script>'
        "<style>html,body{margin:0;height:100%}replay-web-page{display:block;height:100vh}</style></head><body>"
        f'<replay-web-page source="archive.wacz" url="{escape(url)}" replayBase="./" embed="replayonly">'
        "</replay-web-page></body></html>"
    )


@dataclass
class Replayed:
    """What the replayed document showed, and every request it made to the replay service worker."""

    title: str
    text: str
    kicker_color: str | None
    body_font: str | None
    requests: dict[str, int | None] = field(default_factory=dict)  # archived URL -> status (None: failed)

    @property
    def unanswered(self) -> dict[str, int | None]:
        return {u: s for u, s in self.requests.items() if s is None or s >= 400}


_REPLAYED = re.compile(r"/w/[^/]+/(?::[0-9a-f]+/)?\d*[a-z]*_?/(https?://.+)$")


def archived_url(replay_url: str) -> str | None:
    """The archived URL inside a ReplayWeb.page replay URL (`.../w/<coll>/[:<hash>/]<ts><mod>/<url>`)."""
    m = _REPLAYED.search(replay_url)
    return m.group(1) if m else None
