"""The WARC records archiver writes (request, response, revisit, metadata, conversion, warcinfo), built with warcio.

Each record is warcio's `ArcWarcRecord` made by its `RecordBuilder.create_warc_record`: WARC fields in a
`StatusAndHeaders`, the HTTP head in `HttpHeaders` (kept as received), the payload in memory (Scrapy holds bodies in
memory anyway). Ours are only the rules warcio leaves open: field order, WARC-Date precision, which fields each type
carries. Digests are sha1 in base32 everywhere, so revisits match across runs and tools.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import re
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import metadata
from typing import BinaryIO, TypeVar
from urllib.parse import urljoin, urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver import __version__

WARC_1_0 = "1.0"
WARC_1_1 = "1.1"
# What writes the records, for warcinfo's `software`: archiver's builders and warcio's writer, as installed here.
WRITER_SOFTWARE = f"archiver/{__version__} warcio/{metadata.version('warcio')}"
VERSIONS = (WARC_1_0, WARC_1_1)

HTTP_REQUEST_TYPE = "application/http; msgtype=request"
HTTP_RESPONSE_TYPE = "application/http; msgtype=response"
WARC_FIELDS_TYPE = "application/warc-fields"
TEXT_TYPE = "text/plain; charset=utf-8"

IDENTICAL_PAYLOAD_DIGEST = "identical-payload-digest"
SERVER_NOT_MODIFIED = "server-not-modified"

# Headers that describe the transfer, not the stored message: never written as received.
_HOP_HEADERS = {b"transfer-encoding", b"content-length"}

Header = tuple[str, str]
RawHeader = tuple[bytes, bytes]


def revisit_profile(version: str, profile: str) -> str:
    """The revisit profile URI of a WARC version (`identical-payload-digest` or `server-not-modified`)."""
    return f"http://netpreserve.org/warc/{version}/revisit/{profile}"


def warc_date(when: datetime, version: str = WARC_1_1) -> str:
    """A WARC-Date: microseconds in WARC/1.1 (also when they are 0, unlike warcio), whole seconds in WARC/1.0, UTC."""
    when = when.astimezone(UTC)
    if version == WARC_1_0:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha1_digest(*parts: bytes) -> str:
    """The `sha1:<base32>` digest of some bytes (of several parts in a row, without joining them)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part)
    return "sha1:" + base64.b32encode(h.digest()).decode("ascii")


def new_record_id() -> str:
    """A fresh `<urn:uuid:...>` record id."""
    return f"<urn:uuid:{uuid.uuid4()}>"


def reason_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (Scrapy does not keep the server's)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HttpHeaders(StatusAndHeaders):
    """warcio's HTTP head, written byte for byte as received: latin-1, every repeated header in its place.

    warcio writes heads as ASCII and %-encodes any other byte (RFC 8187), which is not what the server sent.
    """

    def compute_headers_buffer(self, header_filter=None) -> None:
        """The head's bytes, made once: a record's head is fixed when it is built (warcio asks again on write)."""
        if self.headers_buff is None:
            self.headers_buff = self.to_bytes(header_filter, encoding="latin-1")


class WarcFields(StatusAndHeaders):
    """warcio's WARC header fields, looked up by exact name first: warcio and archiver write the canonical names, so
    the case-insensitive scan (a `lower()` per field, on every lookup warcio's writer makes) is mostly not needed."""

    def __init__(self, version: str, headers: list[Header]) -> None:
        super().__init__("", [], protocol=f"WARC/{version}")
        self.headers = headers

    def get_header(self, name, default_value=None):
        for key, value in self.headers:
            if key == name:
                return value
        return super().get_header(name, default_value)

    def replace_header(self, name, value):
        headers = self.headers
        for index in range(len(headers) - 1, -1, -1):
            key, old = headers[index]
            if key == name:
                headers[index] = (key, value)
                return old
        return super().replace_header(name, value)

    get = get_header
    __getitem__ = get_header
    __setitem__ = replace_header


class RecordWriter(WARCWriter):
    """warcio's WARCWriter and record builder, writing records as archiver builds them, uncompressed, to `out`
    (`archiver.warc.writer` puts each into its own gzip member).

    It adds no digest: the builders make every digest themselves, as the payload digest is needed before writing
    (revisits) and the digest fields have their place in our field order (warcio would append missing ones last).
    """

    def __init__(self, out: BinaryIO, version: str = WARC_1_1) -> None:
        super().__init__(out, gzip=False, warc_version=version)

    def ensure_digest(self, record: ArcWarcRecord, block: bool = True, payload: bool = True) -> None:
        return None


_BUILDER = RecordWriter(io.BytesIO())


class WarcRecord:
    """One record as warcio holds it (`self.record`), with its payload in memory; what the writer writes.

    `WarcRecord(version, fields, block)` makes a record of any fields and block, written exactly as given.
    """

    __slots__ = ("payload", "record")

    def __init__(self, version: str, headers: list[Header], block: bytes = b"") -> None:
        fields = WarcFields(version, headers)
        rtype = fields.get_header("WARC-Type") or ""
        self.record = ArcWarcRecord("warc", rtype, fields, None, None, fields.get_header("Content-Type"), len(block))
        self.record.payload_length = len(block)
        self.payload = block

    @classmethod
    def build(
        cls,
        version: str,
        headers: list[Header],
        payload: bytes = b"",
        http: HttpHeaders | None = None,
        uri: str = "",
    ) -> WarcRecord:
        """A record of fields in our order (WARC-Type first), an HTTP head if any, and the payload, with its
        Content-Length field last; records with an HTTP head made by warcio's `create_warc_record`."""
        if http is None:  # what create_warc_record makes of it, without the HTTP parser it sets up for every call
            headers.append(("Content-Length", str(len(payload))))  # last, where warcio's writer finds it
            return cls(version, headers, payload)
        http.compute_headers_buffer()
        headers.append(("Content-Length", str(len(http.headers_buff) + len(payload))))
        self = cls.__new__(cls)
        fields = WarcFields(version, headers)
        stream = io.BytesIO(payload)
        self.record = _BUILDER.create_warc_record(
            uri, headers[0][1], payload=stream, length=len(payload), warc_headers=fields, http_headers=http
        )
        self.payload = payload
        return self

    @property
    def version(self) -> str:
        return self.record.rec_headers.protocol.removeprefix("WARC/")

    @property
    def headers(self) -> list[Header]:
        """The WARC fields in order; changing the list changes the record."""
        return self.record.rec_headers.headers

    @headers.setter
    def headers(self, value: list[Header]) -> None:
        self.record.rec_headers.headers = value

    @property
    def http_head(self) -> bytes:
        """The HTTP head as written (empty if the block is not an HTTP message)."""
        http = self.record.http_headers
        if not http:
            return b""
        if http.headers_buff is None:
            http.compute_headers_buffer()
        return http.headers_buff

    @property
    def block(self) -> bytes:
        """The block as written: HTTP head (if any), then the payload."""
        return self.http_head + self.payload

    @block.setter
    def block(self, value: bytes) -> None:
        """Replace the block with bytes written as they are (its digests are not recomputed)."""
        self.record.http_headers = None
        self.record.raw_stream = io.BytesIO(value)
        self.record.length = self.record.payload_length = len(value)
        self.payload = value

    def get(self, name: str) -> str | None:
        """The first value of a WARC field, case-insensitive."""
        return self.record.rec_headers.get_header(name)

    @property
    def record_id(self) -> str:
        return self.get("WARC-Record-ID") or ""

    @property
    def type(self) -> str:
        return self.record.rec_type or ""

    def write_to(self, writer: RecordWriter) -> None:
        """Write the record uncompressed with warcio's writer (which adds Content-Length last); repeatable."""
        self.record.raw_stream = io.BytesIO(self.payload)
        writer.write_record(self.record)

    def to_bytes(self) -> bytes:
        """The record as written to a file, before compression."""
        out = io.BytesIO()
        self.write_to(RecordWriter(out, self.version))
        return out.getvalue()


@dataclass(slots=True)
class Exchange:
    """What one HTTP exchange looked like on the wire, as far as Scrapy lets us see it."""

    url: str
    method: str
    request_headers: list[RawHeader]
    request_body: bytes
    protocol: str | None
    status: int
    response_headers: list[RawHeader]
    body: bytes
    fetched_at: datetime
    ip_address: str | None = None
    truncated: str | None = None  # WARC-Truncated reason: length, time, disconnect, unspecified


@dataclass(slots=True)
class PriorCapture:
    """An earlier capture a revisit refers to."""

    record_id: str
    url: str
    fetched_at: str
    payload_digest: str | None = None


@dataclass(slots=True)
class CaptureRecords:
    """The records of one exchange, in the order they are written."""

    request: WarcRecord
    response: WarcRecord
    extra: list[WarcRecord] = field(default_factory=list)

    def all(self) -> list[WarcRecord]:
        return [self.request, self.response, *self.extra]


def _status_protocol(protocol: str | None) -> str:
    """The HTTP version written in message lines: HTTP/1.0 and HTTP/1.1 as they were, HTTP/1.1 otherwise."""
    if protocol and protocol.upper() in ("HTTP/1.0", "HTTP/1.1"):
        return protocol.upper()
    return "HTTP/1.1"


def _warc_protocol(protocol: str | None) -> str | None:
    if not protocol:
        return None
    p = protocol.lower()
    return {"h2": "h2", "http/2": "h2", "http/2.0": "h2"}.get(p, p)


def _http_headers(first: str, protocol: str, headers: list[tuple[str, str]]) -> HttpHeaders:
    http = HttpHeaders(first, [], protocol=protocol)
    http.headers = headers  # already str: warcio's conversion of each header is not needed
    return http


def http_response_headers(exchange: Exchange) -> HttpHeaders:
    """Status line and headers of the response as stored: every value kept, Content-Length of the stored body."""
    received = exchange.response_headers
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in received if k.lower() not in _HOP_HEADERS]
    headers.append(("Content-Length", str(len(exchange.body))))
    status = f"{exchange.status} {reason_phrase(exchange.status)}"
    return _http_headers(status, _status_protocol(exchange.protocol), headers)


def http_request_headers(exchange: Exchange) -> HttpHeaders:
    """Request line (path and query) and the headers as sent, Host last."""
    parts = urlsplit(exchange.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in exchange.request_headers
        if k.lower() not in (b"host", b"transfer-encoding")
    ]
    if exchange.request_body and not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("Content-Length", str(len(exchange.request_body))))
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != default_port:
        host = f"{host}:{parts.port}"
    headers.append(("Host", host))
    return _http_headers(f"{target} {_status_protocol(exchange.protocol)}", exchange.method, headers)


def http_response_head(exchange: Exchange) -> bytes:
    """The bytes of `http_response_headers`."""
    return http_response_headers(exchange).to_bytes(encoding="latin-1")


def http_request_head(exchange: Exchange) -> bytes:
    """The bytes of `http_request_headers`."""
    return http_request_headers(exchange).to_bytes(encoding="latin-1")


def _date_for_version(date: str, version: str) -> str:
    """A WARC-Date written by another run, cut to whole seconds for WARC/1.0."""
    return re.sub(r"\.\d+Z$", "Z", date) if version == WARC_1_0 else date


def _common(rtype: str, exchange: Exchange, date: str, record_id: str) -> list[Header]:
    headers = [
        ("WARC-Type", rtype),
        ("WARC-Record-ID", record_id),
        ("WARC-Date", date),
        ("WARC-Target-URI", exchange.url),
    ]
    if exchange.ip_address:
        headers.append(("WARC-IP-Address", exchange.ip_address))
    return headers


def _http_head(http: HttpHeaders) -> bytes:
    http.compute_headers_buffer()
    return http.headers_buff


def build_exchange(
    exchange: Exchange,
    version: str = WARC_1_1,
    revisit_of: PriorCapture | None = None,
    revisit_profile_name: str | None = None,
    payload_digest: str | None = None,
) -> CaptureRecords:
    """Request + response (or revisit) records of one exchange, linked both ways, same WARC-Date.

    `payload_digest`: the body's `sha1_digest` when the caller already has it (saves hashing the body again).
    """
    date = warc_date(exchange.fetched_at, version)
    req_id, resp_id = new_record_id(), new_record_id()
    http = http_response_headers(exchange)
    head = _http_head(http)
    payload_digest = payload_digest or sha1_digest(exchange.body)
    protocol = _warc_protocol(exchange.protocol)

    if revisit_of is not None and revisit_profile_name is not None:
        payload = b""
        resp_headers = _common("revisit", exchange, date, resp_id)
        resp_headers += [
            ("WARC-Concurrent-To", req_id),
            ("Content-Type", HTTP_RESPONSE_TYPE),
            ("WARC-Profile", revisit_profile(version, revisit_profile_name)),
            ("WARC-Refers-To", revisit_of.record_id),
            ("WARC-Refers-To-Target-URI", revisit_of.url),
            ("WARC-Refers-To-Date", _date_for_version(revisit_of.fetched_at, version)),
        ]
        digest = payload_digest if revisit_profile_name == IDENTICAL_PAYLOAD_DIGEST else revisit_of.payload_digest
        if digest:
            resp_headers.append(("WARC-Payload-Digest", digest))
        if revisit_profile_name == IDENTICAL_PAYLOAD_DIGEST:
            resp_headers.append(("WARC-Truncated", "length"))
    else:
        payload = exchange.body
        resp_headers = _common("response", exchange, date, resp_id)
        resp_headers += [
            ("WARC-Concurrent-To", req_id),
            ("Content-Type", HTTP_RESPONSE_TYPE),
            ("WARC-Payload-Digest", payload_digest),
        ]
        if exchange.truncated:
            resp_headers.append(("WARC-Truncated", exchange.truncated))
    if protocol:
        resp_headers.append(("WARC-Protocol", protocol))
    resp_headers.append(("WARC-Block-Digest", sha1_digest(head, payload)))
    response = WarcRecord.build(version, resp_headers, payload, http, exchange.url)

    req_http = http_request_headers(exchange)
    req_head = _http_head(req_http)
    req_headers = _common("request", exchange, date, req_id)
    req_headers += [
        ("WARC-Concurrent-To", resp_id),
        ("Content-Type", HTTP_REQUEST_TYPE),
        ("WARC-Payload-Digest", sha1_digest(exchange.request_body)),
    ]
    if protocol:
        req_headers.append(("WARC-Protocol", protocol))
    req_headers.append(("WARC-Block-Digest", sha1_digest(req_head, exchange.request_body)))
    request = WarcRecord.build(version, req_headers, exchange.request_body, req_http, exchange.url)
    return CaptureRecords(request=request, response=response)


def warc_fields(fields: Iterable[tuple[str, object]]) -> bytes:
    """An application/warc-fields block; values on one line (newlines escaped), empty values left out."""
    lines = []
    for name, value in fields:
        if value is None or value == "":
            continue
        text = str(value).replace("\r", "\\r").replace("\n", "\\n")
        lines.append(f"{name}: {text}\r\n")
    return "".join(lines).encode("utf-8")


def build_metadata(
    url: str,
    concurrent_to: str,
    fields: Iterable[tuple[str, object]],
    when: datetime,
    version: str = WARC_1_1,
) -> WarcRecord:
    """A metadata record (application/warc-fields) about the capture `concurrent_to`."""
    block = warc_fields(fields)
    headers = [
        ("WARC-Type", "metadata"),
        ("WARC-Record-ID", new_record_id()),
        ("WARC-Date", warc_date(when, version)),
        ("WARC-Target-URI", url),
        ("WARC-Concurrent-To", concurrent_to),
        ("Content-Type", WARC_FIELDS_TYPE),
        ("WARC-Block-Digest", sha1_digest(block)),
    ]
    return WarcRecord.build(version, headers, block)


def provenance_fields(archiver_meta: dict | None, outlinks: Sequence[str]) -> list[tuple[str, object]]:
    """The warc-fields of a capture's metadata record: article, role, via, hop, each dump that named it, outlinks."""
    meta = archiver_meta or {}
    fields: list[tuple[str, object]] = [
        ("article-id", meta.get("article_id")),
        ("role", meta.get("role")),
        ("via", meta.get("via")),
        ("hop", meta.get("hop")),
    ]
    for dump in meta.get("dumps") or ():
        fields.append(
            (
                "dump",
                json.dumps(
                    {"file": dump.get("file"), "feed_time": dump.get("feed_time"), "title": dump.get("title")},
                    ensure_ascii=False,
                ),
            )
        )
    fields += [("outlink", link) for link in outlinks]
    return fields


def build_conversion(url: str, refers_to: str, text: str, when: datetime, version: str = WARC_1_1) -> WarcRecord:
    """A conversion record with the text extracted from the response `refers_to`."""
    block = text.encode("utf-8")
    digest = sha1_digest(block)
    headers = [
        ("WARC-Type", "conversion"),
        ("WARC-Record-ID", new_record_id()),
        ("WARC-Date", warc_date(when, version)),
        ("WARC-Target-URI", url),
        ("WARC-Refers-To", refers_to),
        ("Content-Type", TEXT_TYPE),
        ("WARC-Payload-Digest", digest),
        ("WARC-Block-Digest", digest),
    ]
    return WarcRecord.build(version, headers, block)


def build_warcinfo(
    filename: str, fields: Iterable[tuple[str, object]], when: datetime, version: str = WARC_1_1
) -> WarcRecord:
    """The warcinfo record that opens a file."""
    block = warc_fields(fields)
    headers = [
        ("WARC-Type", "warcinfo"),
        ("WARC-Record-ID", new_record_id()),
        ("WARC-Date", warc_date(when, version)),
        ("WARC-Filename", filename),
        ("Content-Type", WARC_FIELDS_TYPE),
        ("WARC-Block-Digest", sha1_digest(block)),
    ]
    return WarcRecord.build(version, headers, block)


# --- content helpers -------------------------------------------------------------------------------------


GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_CHUNK = 64 * 1024  # decoded bytes per step when a size limit applies


class BodyTooLarge(ValueError):
    """A content-encoded body that decodes to more than the size limit."""


def _inflate(data: bytes, wbits: int, max_size: int | None) -> tuple[bytes, bool]:
    """One zlib/gzip/raw deflate stream inflated, in steps that stop once past `max_size` (zlib.error if broken).

    Also says whether the stream was whole: it ended, and exactly where `data` does.
    """
    inflater = zlib.decompressobj(wbits=wbits)
    if max_size is None:
        data = inflater.decompress(data)
        return data, inflater.eof and not inflater.unused_data
    out, tail = io.BytesIO(), data
    while True:
        chunk = inflater.decompress(tail, _INFLATE_CHUNK)
        if out.tell() + len(chunk) > max_size:
            raise BodyTooLarge(f"decodes to more than {max_size} bytes")
        out.write(chunk)
        tail = inflater.unconsumed_tail
        # Stop at the end of the stream or when a step gives nothing (input used up or cut short); a step
        # with output but no input left goes on, as zlib may still hold decoded bytes back.
        if inflater.eof or not chunk:
            return out.getvalue(), inflater.eof and not inflater.unused_data


def undo_encodings(
    body: bytes, encodings: Sequence[str], max_size: int | None = None, *, exact: bool = False
) -> bytes | None:
    """The body with gzip/deflate/identity Content-Encodings undone (last applied first); None if impossible.

    Raises BodyTooLarge rather than hold more than `max_size` (plus one step) decoded bytes; None or 0: no limit.
    `exact`: None unless the body decodes exactly as Scrapy's HttpCompressionMiddleware decodes it (`decode_content`).
    """
    data, scrapy_same = decode_content(body, encodings, max_size)
    return data if scrapy_same or not exact else None


def decode_content(body: bytes, encodings: Sequence[str], max_size: int | None = None) -> tuple[bytes | None, bool]:
    """`undo_encodings(body, encodings, max_size)`, and whether Scrapy's HttpCompressionMiddleware decodes the body
    to the same bytes: every encoding gzip or deflate, every stream whole with nothing after it."""
    limit = max_size or None
    data = body
    scrapy_same = True
    for enc in reversed([e.strip().lower() for e in encodings if e.strip()]):
        try:
            if enc in ("gzip", "x-gzip"):
                scrapy_same &= data.startswith(GZIP_MAGIC)  # zlib-wrapped: wbits 47 reads it, Scrapy's gunzip not
                data, whole = _inflate(data, 47, limit)
            elif enc == "deflate":
                try:
                    data, whole = _inflate(data, 15, limit)
                except zlib.error:
                    data, whole = _inflate(data, -15, limit)
            elif enc == "identity":
                whole = False  # Scrapy keeps `identity` and what follows it encoded
            else:
                return None, False
        except zlib.error:
            return None, False
        scrapy_same &= whole
    if limit is not None and len(data) > limit:
        raise BodyTooLarge(f"{len(data)} bytes, more than {limit}")
    return data, scrapy_same


def decode_body(body: bytes, encodings: Sequence[str], max_size: int | None = None) -> bytes | None:
    """The body with its Content-Encodings undone; None if impossible or more than `max_size` bytes decoded."""
    try:
        return undo_encodings(body, encodings, max_size)
    except BodyTooLarge:
        return None


_HTML_LINK = re.compile(rb"""<(?:a|img)\b[^>]*?\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
# A path from the root with no dot segment, no second leading slash and nothing urlsplit strips (tab, CR, LF).
_ROOT_RELATIVE = re.compile(r"/(?![/.])(?:[^\t\r\n/]|/(?!\.))*\Z")
_REF_LINK = re.compile(r"""<a\b[^>]*?href\s*=\s*"([^"]+)"[^>]*rel\s*=\s*"(?:ArticleRef|CommentRef)\"""", re.I)


_T = TypeVar("_T", str, bytes)


def _unique(links: Iterable[_T]) -> list[_T]:
    seen: dict[_T, None] = {}
    for link in links:
        if link and link not in seen:
            seen[link] = None
    return list(seen)


@functools.lru_cache(maxsize=8192)
def _join_absolute(scheme: str, link: str) -> str:
    """`urljoin(base, link)` for a link with scheme and host: it depends on the base's scheme alone."""
    return urljoin(f"{scheme}://base/", link)


def html_outlinks(base_url: str, html: bytes) -> list[str]:
    """http(s) a/@href and img/@src of an HTML page, absolute, in page order, without duplicates."""
    links = []
    base = urlsplit(base_url)
    scheme, origin = base.scheme, f"{base.scheme}://{base.netloc}"
    for raw_bytes in _unique(m.group(1) or m.group(2) or b"" for m in _HTML_LINK.finditer(html)):
        raw = raw_bytes.decode("utf-8", "replace").strip()
        if not raw or raw.startswith(("#", "javascript:", "mailto:", "data:")):
            continue
        raw = raw.replace("&amp;", "&")
        if raw.startswith(("http://", "https://")):
            link = _join_absolute(scheme, raw)
        elif _ROOT_RELATIVE.match(raw):  # what urljoin gives when there is nothing to normalize
            link = origin + raw
        else:
            link = urljoin(base_url, raw)
        if link.startswith(("http://", "https://")):
            links.append(link)
    return _unique(links)


def api_outlinks(data: bytes) -> list[str]:
    """ArticleRef/CommentRef URLs in DW API JSON: reference objects and `rel` links inside HTML strings."""
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    links: list[str] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).endswith(("ArticleRef", "CommentRef")) and isinstance(node.get("url"), str):
                links.append(node["url"])
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, str) and "Ref" in node and "<a" in node:
            links.extend(_REF_LINK.findall(node))
    return _unique(links)


def has_outlinks(content_type: str) -> bool:
    """Whether `outlinks()` reads bodies of this type (HTML, JSON); others need no decoding."""
    ctype = content_type.lower()
    return "html" in ctype or "json" in ctype


def outlinks(url: str, content_type: str, body: bytes) -> list[str]:
    """Outlinks of a decoded body by its type: HTML a/img links, API JSON article references, else none."""
    ctype = content_type.lower()
    if "html" in ctype:
        return html_outlinks(url, body)
    if "json" in ctype:
        return api_outlinks(body)
    return []
