"""Test support for tests/test_warc_*.py: a loopback HTTP server with the awkward cases, and a crawl runner."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Every path of the loopback Server, in the order the capture tests fetch them.
PATHS = [
    "/page",
    "/chunked",
    "/gzip-chunked",
    "/missing",
    "/etag",
    "/api/detail/article/1",
    "/same",
    "/q?x=1&y=2",
    "/image.jpg",
    "/dataloss",
]
HTML = (
    "<html><head><title>测试页</title></head><body><h1>德国之声</h1>"
    '<a href="/missing">missing</a> <a href="https://www.dw.com/zh/x/a-1">dw</a>'
    '<img src="/image.jpg"><p>' + "正文。" * 400 + "</p></body></html>"
).encode()
API = json.dumps(
    {
        "type": "Article",
        "id": 1,
        "body": [
            {
                "type": "Paragraph",
                "text": '<p>see <a href="https://api.dw.com/api/detail/article/2" rel="ArticleRef">x</a></p>',
            }
        ],
        "reference": {"id": 3, "type": "ArticleRef", "url": "https://api.dw.com/api/detail/article/3"},
    },
    indent=2,
    ensure_ascii=False,
).encode()
IMAGE = bytes(range(256)) * 40


def big_body(n: int) -> bytes:
    """A deterministic, poorly compressible body of n KiB."""
    out, seed = [], hashlib.sha256(str(n).encode()).digest()
    while sum(map(len, out)) < n * 1024:
        seed = hashlib.sha256(seed).digest()
        out.append(seed)
    return b"".join(out)[: n * 1024]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: dict[str, bytes]  # path -> decoded body served (set on the server class)

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]], encoding: str | None = None) -> None:
        self.server.decoded[self.path] = body  # type: ignore[attr-defined]
        if encoding == "gzip":
            body = gzip.compress(body, mtime=0)
        elif encoding == "deflate":
            body = zlib.compress(body)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, body: bytes, headers: list[tuple[str, str]], encoding: str | None = None) -> None:
        self.server.decoded[self.path] = body  # type: ignore[attr-defined]
        if encoding == "gzip":
            body = gzip.compress(body, mtime=0)
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 1000):
            part = body[i : i + 1000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/page":
            self._send(200, HTML, [*html, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")], "gzip")
        elif path == "/chunked":
            self._send_chunked(b"plain chunked text\n" * 300, [("Content-Type", "text/plain")])
        elif path == "/gzip-chunked":
            self._send_chunked(HTML, html, "gzip")
        elif path == "/missing":
            self._send(404, b"<html><body>not here</body></html>", html)
        elif path == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            self._send(200, b"etag body " * 100, [("Content-Type", "text/plain"), ("ETag", '"v1"')], "gzip")
        elif path.startswith("/api/"):
            self._send(200, API, [("Content-Type", "application/json;charset=UTF-8")], "deflate")
        elif path == "/same":
            self._send(200, b"same every time " * 200, [("Content-Type", "text/plain")], "gzip")
        elif path == "/q":
            self._send(200, self.path.encode(), [("Content-Type", "text/plain")])
        elif path == "/image.jpg":
            self._send(200, IMAGE, [("Content-Type", "image/jpeg")])
        elif path == "/dataloss":
            self.server.decoded[self.path] = b"x" * 500  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 500)
            self.wfile.flush()
            self.close_connection = True
        elif path.startswith("/big/"):
            n = int(path.rsplit("/", 1)[1])
            self._send(200, big_body(n), [("Content-Type", "application/octet-stream")])
        elif path.startswith("/slow/"):
            time.sleep(0.05)
            self._send(200, big_body(int(path.rsplit("/", 1)[1]) % 50 + 1), [("Content-Type", "text/plain")], "gzip")
        else:
            self._send(404, b"no route", [("Content-Type", "text/plain")])


class QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that go away (killed crawls) are expected


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 in a background thread."""

    def __enter__(self) -> Server:
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.decoded = {}  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def decoded(self) -> dict[str, bytes]:
        return self.httpd.decoded  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


SPIDER = """
import asyncio, hashlib, json
import scrapy
from archiver import signals as archiver_signals

class WarcTestSpider(scrapy.Spider):
    name = "warctest"

    async def start(self):
        spec = json.load(open(self.spec))
        for i, url in enumerate(spec["urls"]):
            yield self.req(url, i, spec.get("again", []))

    def req(self, url, i, again, headers=None, second=False):
        meta = {"archiver": {"article_id": 1000 + i, "role": "page", "via": None, "hop": 0,
                "dumps": [{"file": "dumps/a.md", "feed_time": "2023-01-01T00:00:00Z", "title": "标题\\n第二行"}]},
                "again": [] if second else again, "i": i}
        return scrapy.Request(url, meta=meta, headers=headers or {}, dont_filter=second,
                              callback=self.parse, errback=self.failed)

    async def parse(self, response):
        cap = response.meta.get("warc_capture")
        if cap and cap["record_type"] == "response" and response.status == 200 and b"<html" in response.body[:200]:
            self.crawler.signals.send_catch_log(archiver_signals.text_extracted, url=response.url,
                                                record_id=cap["record_id"], text="提取的文本 " + response.url)
        yield {"url": response.url, "status": response.status, "capture": cap, "flags": response.flags,
               "body_sha1": hashlib.sha1(response.body).hexdigest(), "class": type(response).__name__,
               "content_encoding": response.headers.get("Content-Encoding", b"").decode()}
        if any(response.url.endswith(a) for a in response.meta["again"]):
            await asyncio.sleep(1.05)  # a later second: replay tools tell captures apart by 14-digit timestamps
            headers = {}
            if response.headers.get("ETag"):
                headers["If-None-Match"] = response.headers["ETag"].decode()
            yield self.req(response.url, response.meta["i"], [], headers, second=True)

    def failed(self, failure):
        self.logger.info("failed %s", failure.request.url)

    def closed(self, reason):
        if getattr(self, "late", None):  # a conversion that arrives while the crawl is closing
            self.crawler.signals.send_catch_log(archiver_signals.text_extracted, url="https://late.example/",
                                                record_id="<urn:uuid:00000000-0000-0000-0000-000000000000>",
                                                text="late text")
"""


def run_crawl(
    tmp: Path,
    urls: list[str],
    again: list[str] = (),
    settings: dict | None = None,
    wait: bool = True,
    spider_args: dict | None = None,
) -> subprocess.CompletedProcess | subprocess.Popen:
    """`scrapy runspider` of the test spider in a subprocess, output below tmp/out; items in tmp/items.jsonl."""
    tmp.mkdir(parents=True, exist_ok=True)
    spider = tmp / "warctest_spider.py"
    spider.write_text(SPIDER)
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"urls": urls, "again": list(again)}))
    s = {
        "ARCHIVER_OUTPUT_DIR": str(tmp / "out"),
        "DOWNLOADER_MIDDLEWARES": json.dumps(
            {
                "archiver.warc.middleware.WarcCaptureMiddleware": 950,
                "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
                "archiver.tuning.decodeonce.HttpCompressionMiddleware": 590,
            }
        ),
        "EXTENSIONS": json.dumps({"archiver.warc.extension.WarcWriterExtension": 0}),
        "DEFAULT_REQUEST_HEADERS": json.dumps({"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}),
        "TELNETCONSOLE_ENABLED": "False",
        "REMOTE_CONTROL_ENABLED": "False",
        "ROBOTSTXT_OBEY": "False",
        "LOG_LEVEL": "INFO",
        "DOWNLOAD_FAIL_ON_DATALOSS": "False",
        "RETRY_ENABLED": "False",
        # revisits within the run from memory; tests that need the state name it
        "ARCHIVER_WARC_CAPTURE_INDEX": "archiver.warc.dedupe:memory_index",
    }
    s.update(settings or {})
    cmd = [
        sys.executable,
        "-m",
        "scrapy",
        "runspider",
        str(spider),
        "-a",
        f"spec={spec}",
        "-o",
        str(tmp / "items.jsonl"),
    ]
    for k, v in s.items():
        cmd += ["-s", f"{k}={v}"]
    for k, v in (spider_args or {}).items():
        cmd += ["-a", f"{k}={v}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    if not wait:
        return subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def items(tmp: Path) -> list[dict]:
    path = tmp / "items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# --- pywb, in its own virtualenv (its pins break Scrapy's env) ---

PYWB_VERSION = "2.10.0"


def cache_dir() -> Path:
    base = os.environ.get("ARCHIVER_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "archiver-tests")
    return Path(base)


def pywb_venv() -> Path:
    """A virtualenv with pywb (its pins break Scrapy's env), built once from PyPI and cached by version."""
    venv = cache_dir() / f"pywb-{PYWB_VERSION}-py{sys.version_info.major}{sys.version_info.minor}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", f"pywb=={PYWB_VERSION}"], capture_output=True, text=True
            )
            assert pip.returncode == 0, f"pywb could not be installed: {pip.stderr[-2000:]}"
            (venv / ".complete").write_text(PYWB_VERSION)
    return venv / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def undo_encoding(headers: dict, body: bytes) -> bytes:
    enc = {k.lower(): v for k, v in headers.items()}.get("content-encoding", "")
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    return body


@contextlib.contextmanager
def running_wayback(pywb_bin: Path, warc_dir: Path | None, root: Path, wacz: Path | None = None) -> Iterator[str]:
    """pywb's `wayback` on a free loopback port over the WARCs of `warc_dir`, indexed by our own CDXJ files
    (or over a WACZ, unpacked and indexed by pywb's `wb-manager add`)."""
    subprocess.run([str(pywb_bin / "wb-manager"), "init", "coll"], cwd=root, check=True, capture_output=True)
    coll = root / "collections" / "coll"
    if wacz is not None:
        add = [str(pywb_bin / "wb-manager"), "add", "--unpack-wacz", "coll", str(wacz)]
        subprocess.run(add, cwd=root, check=True, capture_output=True)
    lines = []
    for w in sorted(warc_dir.glob("*.warc.gz")) if warc_dir is not None else []:
        shutil.copy(w, coll / "archive" / w.name)
        lines += (w.parent / (w.name + ".cdxj")).read_text().splitlines()
    if warc_dir is not None:
        (coll / "indexes" / "index.cdxj").write_text("\n".join(sorted(lines)) + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [str(pywb_bin / "wayback"), "-p", str(port), "-b", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base + "/coll"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
