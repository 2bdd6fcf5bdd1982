"""The stand-in web server: one twisted.web resource that answers for www, api and static.dw.com.

Routing is by Host header (any other host gets 421) and by article id. Responses carry the headers a
CDN-fronted site sends (Date, Server, Set-Cookie, ETag, Last-Modified, Vary), gzip when the client
accepts it, chunked transfer for API JSON, and 304 answers to conditional requests. Faults from a
FaultPlan replace or damage the normal answer.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import shutil
import socket
import struct
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.internet.interfaces import IReactorSSL, IReactorTCP
from twisted.web import http, resource, server

from archiver.compat import client_gone
from archiver.config import DW_HOSTS
from archiver.dw.dumps import FeedEntry, iter_dumps
from archiver.standin import content
from archiver.standin.assets import CACHE_CONTROL, assets
from archiver.standin.corpus import Article, Corpus
from archiver.standin.faults import FaultPlan
from archiver.standin.images import CONTENT_TYPES, image_bytes
from archiver.standin.revisions import RevisionPlan, moved_target, revise
from archiver.standin.tls import make_tls
from archiver.warc.recover import pid_alive

SERVER_NAME = b"nginx"
CACHE_ENTRIES = 256
CHUNK = 8192

_PAGE = re.compile(r"^/(zh|zh-hant)/(?:(.*)/)?a-(\d+)$")
_API = re.compile(r"^/api/detail/article/(\d+)$")
_IMAGE = re.compile(r"^/image/(\d+)_(\w+)\.(jpg|jpeg|png|gif)$", re.IGNORECASE)
# Long-lived images (a fixed date), as a CDN would date them.
_IMAGE_DATE = datetime(2020, 1, 1, tzinfo=UTC)
# The `gzip_bomb` body inflates to this many bytes (a link, then NULs); about 255 KB on the wire.
GZIP_BOMB_BYTES = 256 * 1024 * 1024
_BOMB_HEAD = b'<html><body><a href="/zh/standin-gzip-bomb/a-1">bomb</a>'


@dataclass
class Reply:
    """One HTTP answer before transfer decisions (gzip, chunking, faults)."""

    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    last_modified: datetime | None = None
    chunked: bool = False
    compressible: bool = True
    _gzipped: bytes | None = None

    @property
    def etag(self) -> str | None:
        if self.status != 200:
            return None
        return '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"'

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


def _reason(status: int) -> bytes:
    """The reason phrase; twisted.web lacks 421 and 429."""
    return {421: b"Misdirected Request", 429: b"Too Many Requests"}.get(status) or http.RESPONSES.get(status, b"")


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _accepts_gzip(request: server.Request) -> bool:
    value = (request.getHeader("accept-encoding") or "").lower()
    for part in value.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip() in ("gzip", "*"):
            return "q=0" not in params.replace(" ", "") or "q=0." in params.replace(" ", "")
    return False


def _not_modified(request: server.Request, etag: str | None, last_modified: datetime | None) -> bool:
    """RFC 9110 order: If-None-Match decides when present, else If-Modified-Since."""
    inm = request.getHeader("if-none-match")
    if inm is not None and etag:
        base = etag.replace("-gzip", "")
        tags = {t.strip().removeprefix("W/").replace("-gzip", "") for t in inm.split(",")}
        return "*" in tags or base in tags
    ims = request.getHeader("if-modified-since")
    if ims and last_modified:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified.replace(microsecond=0) <= since
    return False


@functools.cache
def gzip_bomb_body(size: int = GZIP_BOMB_BYTES) -> bytes:
    """A gzip stream that inflates to `size` bytes, about a thousandth of that compressed; built on first use."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper, mtime 0
    parts = [compressor.compress(_BOMB_HEAD)]
    zeros = bytes(1024 * 1024)
    left = size - len(_BOMB_HEAD)
    while left > 0:
        parts.append(compressor.compress(zeros[: min(left, len(zeros))]))
        left -= len(zeros)
    parts.append(compressor.flush())
    return b"".join(parts)


def _raw_socket(transport: Any) -> socket.socket | None:
    """The TCP socket under a (possibly TLS-wrapped) transport."""
    for _ in range(4):
        if hasattr(transport, "getHandle") and isinstance(transport.getHandle(), socket.socket):
            return transport.getHandle()
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
    return None


class _Padding:
    """A pull producer: `size` bytes of spaces that close an HTML comment (`-->`), then finish the request."""

    END = b"-->\n"

    def __init__(self, request: server.Request, size: int) -> None:
        self.request, self.size, self.sent = request, size, 0
        self.stopped = False

    def resumeProducing(self) -> None:
        if self.stopped:
            return
        if self.sent >= self.size:
            self.stopped = True
            self.request.unregisterProducer()
            self.request.finish()
            return
        start, end = self.sent, min(self.sent + 64 * 1024, self.size)
        chunk = bytearray(b" " * (end - start))
        tail_start = self.size - len(self.END)
        for i in range(max(start, tail_start), end):
            chunk[i - start] = self.END[i - tail_start]
        self.sent = end
        self.request.write(bytes(chunk))

    def stopProducing(self) -> None:
        self.stopped = True


class Responder(resource.Resource):
    """The whole stand-in site: route by Host and path, build or fetch the reply, apply the fault."""

    isLeaf = True

    def __init__(self, corpus: Corpus, faults: FaultPlan, reactor: Any, revisions: RevisionPlan | None = None) -> None:
        super().__init__()
        self.corpus, self.faults, self.reactor = corpus, faults, reactor
        self.revisions = revisions or RevisionPlan()
        self.cache: OrderedDict[tuple, Reply] = OrderedDict()
        self.visits: dict[tuple[str, int], int] = {}

    # --- content ---

    def _cached(self, key: tuple, build: Any) -> Reply:
        reply = self.cache.get(key)
        if reply is None:
            reply = build()
            self.cache[key] = reply
            if len(self.cache) > CACHE_ENTRIES:
                self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(key)
        return reply

    def _page(self, article: Article, revision: int) -> Reply:
        def build() -> Reply:
            chrome = self.revisions.epoch
            html = content.render_page(article, self.lookup, revision=revision, chrome=chrome)
            return Reply(200, html.encode("utf-8"), "text/html; charset=utf-8", last_modified=article.modified)

        return self._cached(("page", article.article_id, revision), build)

    def _api(self, article: Article, revision: int) -> Reply:
        def build() -> Reply:
            text = content.render_api(article, self.lookup, revision=revision)
            return Reply(
                200,
                text.encode("utf-8"),
                "application/json;charset=UTF-8",
                last_modified=article.modified,
                chunked=True,
            )

        return self._cached(("api", article.article_id, revision), build)

    @staticmethod
    def _image(image_id: int, fmt: str, ext: str) -> Reply:
        reply = Reply(200, image_bytes(image_id, fmt, ext), CONTENT_TYPES[ext.lower()], last_modified=_IMAGE_DATE)
        reply.compressible = False
        reply.headers.append(("Cache-Control", "public, max-age=31536000"))
        return reply

    @staticmethod
    def _status(status: int, host: str) -> Reply:
        if host == "api.dw.com" and status >= 400:
            return Reply(status, b"", "text/plain;charset=UTF-8")
        phrase = _reason(status).decode()
        body = content.not_found_page() if status == 404 else f"<html><body><h1>{status} {phrase}</h1></body></html>\n"
        return Reply(status, body.encode("utf-8"), "text/html; charset=utf-8")

    @staticmethod
    def _redirect(status: int, location: str) -> Reply:
        body = f'<html><body>Moved: <a href="{location}">{location}</a></body></html>\n'.encode()
        return Reply(status, body, "text/html; charset=utf-8", headers=[("Location", location)])

    def lookup(self, article_id: int) -> Article | None:
        """The article as the revision plan's epoch has it (what pages and API JSON show of it and its links)."""
        article = self.corpus.get(article_id)
        if article is None or not self.revisions.active:
            return article
        return revise(article, self.revisions.state(article_id))

    def _revised(self, article: Article, host: str, role: str) -> Article | Reply:
        """The article at this epoch, or the answer that replaces it: 404/410 when removed, 301 when moved."""
        if not self.revisions.active:
            return article
        state = self.revisions.state(article.article_id)
        if state.status:
            return self._status(state.status, host)
        if state.moved:
            target = self.corpus.get(moved_target(article.article_id, self.corpus.dump_ids()) or 0)
            if target is not None:
                return self._redirect(301, target.page_url if role == "page" else target.api_url)
        return revise(article, state)

    # --- routing ---

    def _asset(self, host: str, path: str) -> Reply | None:
        """A static file of the page (stylesheet, script, font, icon), as a CDN serves a hashed name."""
        asset = assets().get((host, path))
        if asset is None:
            return None

        def build() -> Reply:
            headers = [("Cache-Control", CACHE_CONTROL)]
            reply = Reply(200, asset.body, asset.content_type, headers=headers, last_modified=_IMAGE_DATE)
            reply.compressible = asset.compressible
            return reply

        return self._cached(("asset", host, path), build)

    def route(self, host: str, path: str, uri: str) -> tuple[str, int, Any] | Reply:
        """(role, id, build(revision)) for a servable resource, or a finished Reply (404, 301)."""
        if path == "/robots.txt":
            return Reply(200, content.ROBOTS[host].encode(), "text/plain; charset=utf-8", last_modified=_IMAGE_DATE)
        asset = self._asset(host, path)
        if asset is not None:
            return asset
        if host == "www.dw.com":
            # Dump URLs may carry a raw `?` inside the slug, putting the id in the query: such a target
            # is matched whole and redirected to the canonical URL. A query after the id is ignored.
            m = _PAGE.match(unquote(path))
            in_query = m is None
            m = m or _PAGE.match(unquote(uri))
            if not m:
                return self._status(404, host)
            article = self.corpus.get(int(m.group(3)))
            if article is None:
                return self._status(404, host)
            if in_query or unquote(path) != f"/{m.group(1)}/{article.slug}/a-{article.article_id}":
                return self._redirect(301, article.page_url)
            page = self._revised(article, host, "page")
            if isinstance(page, Reply):
                return page
            return ("page", page.article_id, lambda rev: self._page(page, rev))
        m = _IMAGE.match(path)
        if m:
            image_id, fmt, ext = int(m.group(1)), m.group(2), m.group(3)
            return ("image", image_id, lambda rev: self._image(image_id, fmt, ext))
        m = _API.match(path) if host == "api.dw.com" else None
        if m:
            article = self.corpus.get(int(m.group(1)))
            if article is None:
                return self._status(404, host)
            api = self._revised(article, host, "api")
            if isinstance(api, Reply):
                return api
            return ("api", api.article_id, lambda rev: self._api(api, rev))
        return self._status(404, host)

    # --- twisted.web ---

    def render_GET(self, request: server.Request) -> Any:
        host = (request.getHeader("host") or "").rsplit(":", 1)[0].lower().rstrip(".")
        if host not in DW_HOSTS:
            return self.send(request, Reply(421, b"Misdirected Request\n", "text/plain; charset=utf-8"), host)
        path = request.path.decode("latin-1")
        routed = self.route(host, path, request.uri.decode("latin-1"))
        if isinstance(routed, Reply):
            return self.send(request, routed, host)
        role, rid, build = routed
        key = (role, rid)
        self.visits[key] = visit = self.visits.get(key, 0) + 1
        fault = self.faults.fault_for(role, rid, visit) if self.faults.active else None
        if fault is None:
            return self.send(request, build(0), host)
        request.responseHeaders.setRawHeaders(b"x-standin-fault", [fault.encode()])
        return self.fault(request, host, path, fault, build, visit)

    render_HEAD = render_GET

    def fault(self, request: server.Request, host: str, path: str, fault: str, build: Any, visit: int) -> Any:
        """Answer with the named fault instead of the normal reply."""
        plan = self.faults
        if fault in ("404", "410", "500"):
            return self.send(request, self._status(int(fault), host), host)
        if fault in ("503", "429"):
            reply = self._status(int(fault), host)
            reply.headers.append(("Retry-After", str(plan.retry_after)))
            return self.send(request, reply, host)
        if fault == "redirect_loop":
            looped = request.args.get(b"standin-loop")
            target = f"https://{host}{request.path.decode('latin-1')}" + ("" if looped else "?standin-loop=1")
            return self.send(request, self._redirect(302, target), host)
        if fault == "redirect_offsite":
            return self.send(request, self._redirect(302, f"https://www.example.com/dw{path}"), host)
        if fault == "changes":
            return self.send(request, build(visit), host)
        normal = build(0)
        if fault == "wrong_charset" and normal.content_type.startswith(("text/", "application/json")):
            text = normal.body.decode("utf-8")
            return self.send(request, replace(normal, body=text.encode("gb18030"), _gzipped=None), host)
        if fault == "invalid_json":
            cut = normal.body[: len(normal.body) // 2].decode("utf-8", "ignore").encode("utf-8")
            return self.send(request, replace(normal, body=cut + b"\n<", _gzipped=None, chunked=False), host)
        if fault == "slow":
            call = self.reactor.callLater(plan.slow_seconds, self.send, request, normal, host)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return server.NOT_DONE_YET
        if fault in ("reset", "truncated"):
            return self.damaged(request, normal, fault)
        if fault == "oversized":
            return self.oversized(request, normal)
        if fault == "gzip_bomb":
            return self.gzip_bomb(request, normal, host)
        return self.send(request, normal, host)

    def _start(self, request: server.Request, reply: Reply, host: str) -> None:
        request.setResponseCode(reply.status, _reason(reply.status))
        request.setHeader(b"server", SERVER_NAME)
        request.setHeader(b"content-type", reply.content_type.encode())
        for name, value in reply.headers:
            request.responseHeaders.addRawHeader(name.encode(), value.encode())
        if reply.status == 200 and reply.last_modified:
            request.setHeader(b"last-modified", _http_date(reply.last_modified).encode())
        if host == "www.dw.com":
            if not request.responseHeaders.hasHeader(b"cache-control"):  # hashed static files say a year
                request.setHeader(b"cache-control", b"public, max-age=60")
            for cookie in (
                b"dwuid=standin%d; Path=/; Max-Age=31536000; Secure; SameSite=Lax" % self.revisions.epoch,
                b"AKA_A2=A; Max-Age=3600; path=/; domain=dw.com; secure; HttpOnly",
                b"ak_bmsc=0123456789ABCDEF~000000000000000000000000; Domain=.dw.com; Path=/; Max-Age=7200; HttpOnly",
            ):
                request.responseHeaders.addRawHeader(b"set-cookie", cookie)
        elif host == "api.dw.com":
            request.responseHeaders.addRawHeader(b"set-cookie", b"AKA_A2=A; path=/; domain=dw.com; secure; HttpOnly")
            request.responseHeaders.addRawHeader(b"set-cookie", b"dw_api=1; Path=/api; Secure")

    def send(self, request: server.Request, reply: Reply, host: str) -> Any:
        """Write a reply: 304 if the client's validators match, gzip if accepted, chunked if the reply says so."""
        if client_gone(request):
            return server.NOT_DONE_YET
        self._start(request, reply, host)
        etag = reply.etag
        use_gzip = reply.compressible and bool(reply.body) and _accepts_gzip(request)
        if etag and use_gzip:
            etag = etag[:-1] + '-gzip"'  # each encoding is its own representation
        if reply.compressible:
            request.setHeader(b"vary", b"Accept-Encoding")
        if etag:
            request.setHeader(b"etag", etag.encode())
        if etag and _not_modified(request, etag, reply.last_modified):
            request.setResponseCode(304)
            request.responseHeaders.removeHeader(b"content-type")
            request.finish()
            return server.NOT_DONE_YET
        body = reply.body
        if use_gzip:
            body = reply.gzipped()
            request.setHeader(b"content-encoding", b"gzip")
        if request.method == b"HEAD":
            if not reply.chunked:
                request.setHeader(b"content-length", str(len(body)).encode())
            request.finish()
            return server.NOT_DONE_YET
        if reply.chunked:
            # No Content-Length on HTTP/1.1: twisted.web sends Transfer-Encoding: chunked.
            for i in range(0, len(body), CHUNK):
                request.write(body[i : i + CHUNK])
        else:
            request.setHeader(b"content-length", str(len(body)).encode())
            request.write(body)
        request.finish()
        return server.NOT_DONE_YET

    def damaged(self, request: server.Request, reply: Reply, fault: str) -> Any:
        """Promise the whole body, send part of it, then reset (RST) or close (FIN) the connection."""
        self._start(request, reply, "")
        request.setHeader(b"content-length", str(len(reply.body)).encode())
        request.write(reply.body[: len(reply.body) * 2 // 3 if fault == "truncated" else len(reply.body) // 2])
        transport = request.channel.transport
        if fault == "truncated":
            # Close the TCP connection under any TLS layer: a TLS shutdown would wait for the client's reply.
            getattr(transport, "transport", transport).loseConnection()
        else:

            def abort() -> None:
                sock = _raw_socket(transport)
                if sock is not None:  # linger 0: close() sends RST
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abortConnection()

            self.reactor.callLater(0.2, abort)
        return server.NOT_DONE_YET

    def oversized(self, request: server.Request, reply: Reply) -> Any:
        """The normal body followed by padding up to `oversize_bytes`, announced in Content-Length."""
        size = max(self.faults.oversize_bytes, len(reply.body) + 16)
        self._start(request, reply, "")
        request.setHeader(b"content-length", str(size).encode())
        request.write(reply.body + b"<!--")
        request.registerProducer(_Padding(request, size - len(reply.body) - 4), False)
        return server.NOT_DONE_YET

    def gzip_bomb(self, request: server.Request, reply: Reply, host: str) -> Any:
        """`200` with the reply's type and a small gzip body that inflates far beyond the default DOWNLOAD_MAXSIZE."""
        body = gzip_bomb_body()
        self._start(request, reply, host)
        request.setHeader(b"content-encoding", b"gzip")  # whether the client asked for gzip or not
        request.setHeader(b"content-length", str(len(body)).encode())
        if request.method != b"HEAD":
            request.write(body)
        request.finish()
        return server.NOT_DONE_YET


class _QuietSite(server.Site):
    """A Site without access log lines."""

    noisy = False

    def log(self, request: server.Request) -> None:
        pass


TMP_PREFIX = "dw-standin-"


def sweep_stale_tmpdirs() -> list[Path]:
    """Remove the CA folders of stand-ins whose process is gone (killed before it could clean up)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        pid = folder.name.removeprefix(TMP_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclass
class Listening:
    """A running stand-in: where it listens, the CA to trust, and how to stop it."""

    host: str
    https_port: int
    http_port: int
    ca_cert_path: Path
    _ports: list[Any]
    _tmpdir: Path

    @property
    def address(self) -> str:
        """The value for ARCHIVER_STANDIN_ADDRESS: `host:https_port,http_port`."""
        return f"{self.host}:{self.https_port},{self.http_port}"

    def info(self) -> dict[str, str]:
        """The JSON line `python -m archiver.standin` prints."""
        return {
            "https": f"{self.host}:{self.https_port}",
            "http": f"{self.host}:{self.http_port}",
            "ca_cert": str(self.ca_cert_path),
            "address": self.address,
        }

    def stop(self) -> defer.Deferred:
        """Close both ports and remove the CA file."""
        d = defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in self._ports])
        d.addBoth(lambda r: (shutil.rmtree(self._tmpdir, ignore_errors=True), r)[1])
        return d


class Standin:
    """The DW stand-in for a set of feed dumps (paths, entries, or a ready Corpus)."""

    def __init__(
        self,
        entries_or_dump_paths: Corpus | Iterable[FeedEntry | str | Path],
        *,
        faults: FaultPlan | None = None,
        seed: int = 0,
        revisions: RevisionPlan | None = None,
    ) -> None:
        if isinstance(entries_or_dump_paths, Corpus):
            self.corpus = entries_or_dump_paths
        else:
            items = list(entries_or_dump_paths)
            entries = [i for i in items if isinstance(i, FeedEntry)]
            paths = [i for i in items if not isinstance(i, FeedEntry)]
            from_paths = (r.entry for r in iter_dumps(paths) if r.entry is not None) if paths else ()
            self.corpus = Corpus.from_entries([*entries, *from_paths])
        plan = faults or FaultPlan()
        self.faults = plan if plan.seed is not None else replace(plan, seed=seed)
        self.revisions = revisions or RevisionPlan()

    def resource(self, reactor: Any) -> Responder:
        return Responder(self.corpus, self.faults, reactor, self.revisions)

    def listen(
        self, reactor: Any = None, *, https_port: int = 0, http_port: int = 0, interface: str = "127.0.0.1"
    ) -> Listening:
        """Listen for https and http on `interface` (ephemeral ports by default) on the given reactor."""
        if reactor is None:
            from twisted.internet import reactor
        assert IReactorSSL.providedBy(reactor) and IReactorTCP.providedBy(reactor)
        sweep_stale_tmpdirs()
        tmpdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        tls = make_tls(tmpdir)
        site = _QuietSite(self.resource(reactor))
        site.displayTracebacks = False
        tls_port = reactor.listenSSL(https_port, site, tls.context_factory, interface=interface)
        tcp_port = reactor.listenTCP(http_port, site, interface=interface)
        return Listening(
            interface,
            tls_port.getHost().port,
            tcp_port.getHost().port,
            tls.ca_cert_path,
            [tls_port, tcp_port],
            tmpdir,
        )
