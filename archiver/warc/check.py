"""The project's WARC validator: digests, the WARC 1.0/1.1 field policy per record type, and HTTP sanity.

Pure: reads a file, returns problems (file, offset, record id, rule, detail). `warcio check` verifies digests only;
this also catches what replay tools choke on (stale Content-Length, decoded body still claiming gzip, ...).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20

# Field policy (WARC 1.1 §5, same in 1.0): record types where a field SHALL appear / SHALL NOT appear.
TYPES = {"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"}
MANDATORY = ("WARC-Record-ID", "Content-Length", "WARC-Date", "WARC-Type")
TARGET_URI_REQUIRED = {"response", "resource", "request", "revisit", "conversion", "continuation"}
FORBIDDEN = {
    "WARC-Target-URI": {"warcinfo"},
    "WARC-Concurrent-To": {"warcinfo", "conversion", "continuation"},
    "WARC-Refers-To": {"warcinfo", "response", "resource", "request", "continuation"},
    "WARC-Payload-Digest": {"warcinfo", "metadata"},  # project policy: these blocks have no payload
    "WARC-IP-Address": {"warcinfo"},
    "WARC-Warcinfo-ID": {"warcinfo"},
    "WARC-Profile": {"warcinfo", "response", "resource", "request", "metadata", "conversion", "continuation"},
    "WARC-Filename": TYPES - {"warcinfo"},
}
PAYLOAD_DIGEST_VERIFIED = {"response", "request", "resource", "conversion"}
TRUNCATED_VALUES = {"length", "time", "disconnect", "unspecified"}
PROFILES = ("identical-payload-digest", "server-not-modified")
DATE_1_0 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DATE_1_1 = re.compile(r"^\d{4}(-\d\d(-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,9})?)?Z)?)?)?$")
RECORD_ID = re.compile(r"^<[A-Za-z][A-Za-z0-9+.-]*:[^<>\s]+>$")
STATUS_LINE = re.compile(r"^HTTP/\d(\.\d)? [1-5]\d\d( .*)?$")
REQUEST_LINE = re.compile(r"^[A-Z]+ \S+ HTTP/\d(\.\d)?$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One rule broken by one record."""

    file: str
    offset: int
    record_id: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.offset} {self.record_id or '-'} {self.rule}: {self.detail}"


@dataclass(slots=True)
class CheckResult:
    """What checking one file found."""

    path: str
    records: int = 0
    types: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RawRecord:
    """One record as stored: where it starts, its compressed length, its bytes (None if unreadable)."""

    offset: int
    length: int
    data: bytes | None
    error: str | None = None


# --- reading -------------------------------------------------------------------------------------------------


def iter_gzip_members(stream: BinaryIO) -> Iterator[RawRecord]:
    """Each gzip member of a stream with its offset and length; a broken or cut member ends the iteration.

    Kept beside warcio's ArchiveIterator, which finds records by their Content-Length and reads a member cut short
    as a shorter record without an error: the checks and recovery need the members as stored.
    """
    offset = 0
    pending = b""
    while True:
        if not pending:
            pending = stream.read(CHUNK)
            if not pending:
                return
        start, used, parts = offset, 0, []
        d = zlib.decompressobj(31)
        while True:
            try:
                parts.append(d.decompress(pending))
            except zlib.error as e:
                yield RawRecord(start, used, None, f"corrupt gzip member: {e}")
                return
            if d.eof:
                used += len(pending) - len(d.unused_data)
                pending = d.unused_data
                break
            used += len(pending)
            pending = stream.read(CHUNK)
            if not pending:
                yield RawRecord(start, used, None, "incomplete gzip member (file cut short)")
                return
        offset = start + used
        yield RawRecord(start, used, b"".join(parts))


def iter_plain_records(stream: BinaryIO) -> Iterator[RawRecord]:
    """Each record of an uncompressed WARC (read into memory: meant for small files and tests)."""
    data = stream.read()
    pos = 0
    while pos < len(data):
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            yield RawRecord(pos, len(data) - pos, None, "record header not terminated")
            return
        m = re.search(rb"\r\nContent-Length:\s*(\d+)", data[pos:head_end], re.I)
        if not m:
            yield RawRecord(pos, head_end - pos, None, "no Content-Length")
            return
        end = head_end + 4 + int(m.group(1)) + 4
        yield RawRecord(pos, end - pos, data[pos:end])
        pos = end


def iter_raw_records(path: Path) -> Iterator[RawRecord]:
    """The records of a .warc.gz (one gzip member each) or .warc file."""
    with open(path, "rb") as f:
        magic = f.read(2)
        f.seek(0)
        yield from iter_gzip_members(f) if magic == b"\x1f\x8b" else iter_plain_records(f)


@dataclass(slots=True)
class ParsedRecord:
    """A record split into version, fields, block and what followed the block."""

    version: str
    fields: list[tuple[str, str]]
    block: bytes
    trailer: bytes
    declared_length: int | None

    def get(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.fields if k.lower() == lname), None)

    def count(self, name: str) -> int:
        lname = name.lower()
        return sum(1 for k, _ in self.fields if k.lower() == lname)


def parse_record(data: bytes) -> ParsedRecord:
    """Split a record's bytes; raises ValueError if the header cannot be read.

    Strict where warcio's header parser is lenient (it skips lines without a colon and falls back to latin-1): a
    validator has to see those.
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        raise ValueError("record header not terminated by CRLF CRLF")
    lines = data[:head_end].decode("utf-8").split("\r\n")
    version = lines[0].strip()
    fields = []
    for line in lines[1:]:
        if ":" not in line:
            raise ValueError(f"malformed header line {line[:60]!r}")
        name, value = line.split(":", 1)
        fields.append((name.strip(), value.strip()))
    declared = next((v for k, v in fields if k.lower() == "content-length"), None)
    length = int(declared) if declared is not None and declared.isdigit() else None
    start = head_end + 4
    end = start + (length if length is not None else len(data) - start)
    return ParsedRecord(version, fields, data[start:end], data[end:], length)


# --- digests and HTTP ----------------------------------------------------------------------------------------


def digest_matches(declared: str, data: bytes) -> bool | None:
    """Whether `algo:value` (base32 or hex) is the digest of data; None if the algorithm is unknown."""
    algo, _, value = declared.partition(":")
    try:
        actual = hashlib.new(algo.lower().replace("-", ""), data).digest()
    except ValueError:
        return None
    try:
        if len(value) == 2 * len(actual):
            return binascii.unhexlify(value) == actual
        return base64.b32decode(value.upper()) == actual
    except (binascii.Error, ValueError):
        return False


def split_http(block: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """First line, headers and payload of an HTTP message block; None if there is no header end."""
    end = block.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = block[:end].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, block[end + 4 :]


def encoding_matches(encoding: str, payload: bytes) -> bool | None:
    """Whether a payload starts the way its Content-Encoding says; None when that cannot be told."""
    enc = encoding.strip().lower()
    if enc in ("gzip", "x-gzip"):
        return payload[:2] == b"\x1f\x8b"
    if enc == "zstd":
        return payload[:4] == b"\x28\xb5\x2f\xfd"
    if enc == "deflate":
        if len(payload) >= 2 and payload[0] & 0x0F == 8 and (payload[0] << 8 | payload[1]) % 31 == 0:
            return True
        try:
            zlib.decompressobj(-15).decompress(payload[:4096])
            return True
        except zlib.error:
            return False
    if enc == "br":
        try:
            import brotli
        except ImportError:
            return None
        try:
            brotli.Decompressor().process(payload[:65536])
            return True
        except Exception:
            return False
    if enc == "identity":
        return True
    return None


def dechunk(payload: bytes) -> bytes | None:
    """The payload of a chunked message body; None if it is not valid chunking."""
    out, pos = [], 0
    while True:
        eol = payload.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(payload[pos:eol].split(b";")[0], 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(out)
        out.append(payload[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2


# --- the checks ----------------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, path: Path, expect_version: str | None, result: CheckResult) -> None:
        self.name = str(path)
        self.expect_version = expect_version
        self.result = result
        self.seen_ids: set[str] = set()
        self.file_version: str | None = None

    def problem(self, offset: int, record_id: str, rule: str, detail: str) -> None:
        self.result.problems.append(Problem(self.name, offset, record_id, rule, detail))

    def check(self, raw: RawRecord, index: int) -> None:
        off = raw.offset
        if raw.data is None:
            self.problem(off, "", "gzip-member", raw.error or "unreadable")
            return
        try:
            rec = parse_record(raw.data)
        except (ValueError, UnicodeDecodeError) as e:
            self.problem(off, "", "record-header", str(e))
            return
        rid = rec.get("WARC-Record-ID") or ""
        p = lambda rule, detail: self.problem(off, rid, rule, detail)  # noqa: E731
        self.result.records += 1

        # version
        m = re.fullmatch(r"WARC/(1\.[01])", rec.version)
        version = m.group(1) if m else None
        if version is None:
            p("warc-version", f"unsupported version line {rec.version!r}")
            version = "1.1"
        if self.file_version is None:
            self.file_version = version
        elif version != self.file_version:
            p("warc-version", f"WARC/{version} in a WARC/{self.file_version} file")
        if self.expect_version and version != self.expect_version:
            p("warc-version", f"WARC/{version}, expected WARC/{self.expect_version}")

        # mandatory fields, once each
        for name in MANDATORY:
            n = rec.count(name)
            if n == 0:
                p("mandatory-field", f"{name} missing")
            elif n > 1:
                p("repeated-field", f"{name} appears {n} times")
        for name in ("WARC-Target-URI", "WARC-Block-Digest", "WARC-Payload-Digest", "Content-Type", "WARC-Profile"):
            if rec.count(name) > 1:
                p("repeated-field", f"{name} appears {rec.count(name)} times")
        rtype = rec.get("WARC-Type") or ""
        self.result.types[rtype] += 1
        if rtype and rtype not in TYPES:
            p("record-type", f"unknown WARC-Type {rtype!r}")
        if index == 0 and rtype != "warcinfo":
            p("warcinfo-first", f"first record is {rtype or 'untyped'}, not warcinfo")

        # length and record end
        if rec.declared_length is None:
            if rec.get("Content-Length") is not None:
                p("content-length", f"WARC Content-Length {rec.get('Content-Length')!r} is not a number")
        elif len(rec.block) != rec.declared_length:
            p("content-length", f"block has {len(rec.block)} bytes, Content-Length says {rec.declared_length}")
        if rec.trailer[:4] != b"\r\n\r\n":
            p("record-end", "block not followed by CRLF CRLF")
        elif len(rec.trailer) > 4:
            p("one-record-per-member", f"{len(rec.trailer) - 4} bytes after the record in its gzip member")

        # ids and dates
        if rid:
            if not RECORD_ID.match(rid):
                p("record-id", f"WARC-Record-ID {rid!r} is not <uri>")
            if rid in self.seen_ids:
                p("record-id", "duplicate WARC-Record-ID in file")
            self.seen_ids.add(rid)
        date_re = DATE_1_0 if version == "1.0" else DATE_1_1
        for name in ("WARC-Date", "WARC-Refers-To-Date"):
            value = rec.get(name)
            if value is not None and not date_re.match(value):
                p("date-format", f"{name} {value!r} is not a WARC/{version} date")
        for name in ("WARC-Concurrent-To", "WARC-Refers-To", "WARC-Warcinfo-ID"):
            for k, v in rec.fields:
                if k.lower() == name.lower() and not RECORD_ID.match(v):
                    p("record-id", f"{name} {v!r} is not <uri>")

        # field policy
        if rtype in TARGET_URI_REQUIRED and not rec.get("WARC-Target-URI"):
            p("target-uri", f"WARC-Target-URI missing on {rtype}")
        for name, types in FORBIDDEN.items():
            if rtype in types and rec.count(name):
                p("field-policy", f"{name} SHALL NOT appear on {rtype}")
        if rec.block and not rec.get("Content-Type") and rtype != "continuation":
            p("content-type", "non-empty block without Content-Type")
        truncated = rec.get("WARC-Truncated")
        if truncated is not None and truncated not in TRUNCATED_VALUES:
            p("truncated", f"WARC-Truncated {truncated!r} is not one of {sorted(TRUNCATED_VALUES)}")
        ip = rec.get("WARC-IP-Address")
        if ip is not None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                p("ip-address", f"WARC-IP-Address {ip!r} is not an IP address")

        # revisits
        if rtype == "revisit":
            profile = rec.get("WARC-Profile")
            if not profile:
                p("revisit-profile", "WARC-Profile missing on revisit")
            else:
                known = {f"http://netpreserve.org/warc/{v}/revisit/{n}": v for v in ("1.0", "1.1") for n in PROFILES}
                if profile in known and known[profile] != version:
                    p("revisit-profile", f"profile URI of WARC/{known[profile]} in a WARC/{version} record")
                if profile.endswith("identical-payload-digest"):
                    if not rec.get("WARC-Payload-Digest"):
                        p("revisit-digest", "identical-payload-digest revisit without WARC-Payload-Digest")
                    if rec.block and rec.get("WARC-Truncated") != "length":
                        p("revisit-truncated", "revisit keeps headers but lacks WARC-Truncated: length")

        # digests
        block_digest = rec.get("WARC-Block-Digest")
        if block_digest is None:
            p("block-digest", "WARC-Block-Digest missing")
        elif digest_matches(block_digest, rec.block) is False:
            p("block-digest", "WARC-Block-Digest does not match the block")
        ctype = (rec.get("Content-Type") or "").lower()
        is_http = ctype.startswith("application/http")
        http = split_http(rec.block) if is_http else None
        if is_http and http is None and rec.block:
            p("http-message", "application/http block without a header end")
        payload_digest = rec.get("WARC-Payload-Digest")
        if payload_digest and rtype in PAYLOAD_DIGEST_VERIFIED:
            payload = http[2] if http is not None else (None if is_http else rec.block)
            if payload is not None:
                headers = {k.lower(): v for k, v in http[1]} if http else {}
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    payload = dechunk(payload) or payload
                if digest_matches(payload_digest, payload) is False:
                    p("payload-digest", "WARC-Payload-Digest does not match the payload")
        if http is not None:
            self.check_http(rec, rtype, http, p)

    def check_http(self, rec: ParsedRecord, rtype: str, http, p) -> None:
        first, headers, payload = http
        if rtype == "request":
            if not REQUEST_LINE.match(first):
                p("http-request-line", f"request line {first[:80]!r} does not parse")
            return
        if not STATUS_LINE.match(first):
            p("http-status-line", f"status line {first[:80]!r} does not parse")
        if rtype != "response":
            return  # a revisit keeps headers only; its payload is the original's
        names = {k.lower() for k, _ in headers}
        values = lambda n: [v for k, v in headers if k.lower() == n]  # noqa: E731
        chunked = any("chunked" in v.lower() for v in values("transfer-encoding"))
        body = payload
        if chunked:
            body = dechunk(payload)
            if body is None:
                p("http-transfer-encoding", "Transfer-Encoding: chunked but the payload is not chunked")
                body = payload
        elif "content-length" in names:
            lengths = set(values("content-length"))
            if lengths != {str(len(payload))}:
                p(
                    "http-content-length",
                    f"HTTP Content-Length {', '.join(sorted(lengths))} but the stored payload has {len(payload)} bytes",
                )
        encodings = [e.strip() for v in values("content-encoding") for e in v.split(",") if e.strip()]
        if encodings and body:
            outer = encodings[-1]
            if encoding_matches(outer, body) is False:
                p("http-content-encoding", f"Content-Encoding {outer} but the payload does not start as {outer}")


def check_file(path: str | Path, expect_version: str | None = None) -> CheckResult:
    """Check every record of one WARC file."""
    path = Path(path)
    result = CheckResult(str(path))
    checker = _Checker(path, expect_version, result)
    try:
        for i, raw in enumerate(iter_raw_records(path)):
            checker.check(raw, i)
    except OSError as e:
        checker.problem(0, "", "io", str(e))
    if result.records == 0 and not result.problems:
        checker.problem(0, "", "empty", "no records")
    return result
