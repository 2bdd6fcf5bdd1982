"""Find and read archived records: by (file, offset), by record id (items, then a scan) or by URL (CDXJ)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archiver.warc.cdxj import CDXJ_SUFFIX, read_cdxj
from archiver.warc.check import ParsedRecord, iter_gzip_members, parse_record, split_http
from archiver.warc.records import decode_body
from archiver.warc.writer import OPEN_SUFFIX, TEXT_SUFFIX


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record is."""

    warc_file: Path
    offset: int


def read_record_at(path: Path, offset: int) -> ParsedRecord:
    """The record that starts at `offset` of a .warc.gz file."""
    with open(path, "rb") as f:
        f.seek(offset)
        raw = next(iter_gzip_members(f), None)
    if raw is None or raw.data is None:
        raise ValueError(f"{path}:{offset}: no complete record there")
    return parse_record(raw.data)


def iter_item_captures(items_dir: Path) -> Iterator[dict]:
    """Every capture listed by the items in `items/*.jsonl`."""
    for path in sorted(items_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield from json.loads(line).get("captures") or []


def find_by_record_id(output: Path, record_id: str) -> Location | None:
    """A record by id: from the items' captures, else by scanning the WARC headers."""
    warc_dir = output / "warc"
    rid = record_id if record_id.startswith("<") else f"<{record_id}>"
    for cap in iter_item_captures(output / "items"):
        if cap.get("record_id") == rid and cap.get("warc_file") and cap.get("offset") is not None:
            return Location(warc_dir / cap["warc_file"], int(cap["offset"]))
    needle = f"WARC-Record-ID: {rid}\r\n".encode()
    for path in sorted([*warc_dir.glob("*.warc.gz"), *warc_dir.glob(f"*{TEXT_SUFFIX}")]):
        with open(path, "rb") as f:
            for raw in iter_gzip_members(f):
                if raw.data is not None and needle in raw.data[: raw.data.find(b"\r\n\r\n") + 2]:
                    return Location(path, raw.offset)
    return None


def find_by_url(warc_dir: Path, url: str, digest: str | None = None, full_only: bool = False) -> Location | None:
    """The newest capture of a URL in the CDXJ indexes (with that payload digest, not a revisit if asked)."""
    best: tuple[str, Location] | None = None
    for idx in sorted(warc_dir.glob(f"*{CDXJ_SUFFIX}")):
        for line in read_cdxj(idx):
            f = line.fields
            if f.get("url") != url or (digest and f.get("digest") != digest):
                continue
            if full_only and f.get("mime") == "warc/revisit":
                continue
            if best is None or line.timestamp >= best[0]:
                best = (line.timestamp, Location(warc_dir / f["filename"], int(f["offset"])))
    return best[1] if best else None


def archived_response(warc_dir: Path, record: ParsedRecord, max_size: int | None = None) -> tuple[bytes, bytes]:
    """(HTTP head, decoded payload) of a response, or of a revisit with the original's payload.

    A payload that does not decode, or would decode to more than `max_size` bytes, is given as stored.
    """
    http = split_http(record.block)
    if http is None:
        return b"", record.block
    first, headers, payload = http
    if record.get("WARC-Type") == "revisit":
        target = record.get("WARC-Refers-To-Target-URI") or record.get("WARC-Target-URI") or ""
        loc = find_by_url(warc_dir, target, record.get("WARC-Payload-Digest"), full_only=True)
        if loc is not None:
            original = split_http(read_record_at(loc.warc_file, loc.offset).block)
            if original is not None:
                payload = original[2]
                if first.split(" ")[1:2] == ["304"]:
                    first, headers = original[0], original[1]
    head = "\r\n".join([first, *(f"{k}: {v}" for k, v in headers)]).encode("latin-1") + b"\r\n\r\n"
    decoded = _decoded(headers, payload, max_size)
    return head, payload if decoded is None else decoded


def _decoded(headers: list[tuple[str, str]], payload: bytes, max_size: int | None) -> bytes | None:
    encodings = [e for k, v in headers if k.lower() == "content-encoding" for e in v.split(",")]
    return decode_body(payload, encodings, max_size)


def archived_body(warc_dir: Path, warc_file: str, offset: int, max_size: int | None = None) -> bytes:
    """The decoded payload of the response record at `offset` of `warc_file` (still `.open` if being written).

    ValueError if there is no response there, or its payload does not decode within `max_size` bytes.
    """
    path = warc_dir / warc_file
    if not path.exists() and path.with_name(path.name + OPEN_SUFFIX).exists():
        path = path.with_name(path.name + OPEN_SUFFIX)
    http = split_http(read_record_at(path, offset).block)
    if http is None:
        raise ValueError("no HTTP response in the record")
    decoded = _decoded(http[1], http[2], max_size)
    if decoded is None:
        raise ValueError(f"payload does not decode within {max_size} bytes")
    return decoded
