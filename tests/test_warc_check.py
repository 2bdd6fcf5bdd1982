"""`scrapy warc-check` catches the classic mistakes, on WARCs built badly on purpose."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.warc.check import check_file
from archiver.warc.records import (
    WarcRecord,
    build_conversion,
    build_metadata,
    build_warcinfo,
    new_record_id,
    sha1_digest,
    warc_date,
)
from archiver.warc.writer import gzip_member

URL = "https://www.dw.com/zh/x/a-1"
BODY = "<html><body>德国之声</body></html>".encode() * 50
NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def response(body: bytes, headers: list[tuple[str, str]], version: str = "1.1", drop: str | None = None) -> WarcRecord:
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    block = head.encode() + body
    fields = [
        ("WARC-Type", "response"),
        ("WARC-Record-ID", new_record_id()),
        ("WARC-Date", warc_date(NOW, version)),
        ("WARC-Target-URI", URL),
        ("Content-Type", "application/http; msgtype=response"),
        ("WARC-Payload-Digest", sha1_digest(body)),
        ("WARC-Block-Digest", sha1_digest(block)),
    ]
    return WarcRecord(version, [f for f in fields if f[0] != drop], block)


def write(path: Path, records: list[WarcRecord], version: str = "1.1") -> Path:
    info = build_warcinfo(path.name, [("software", "test")], NOW, version)
    path.write_bytes(b"".join(gzip_member(r.to_bytes(), 6) for r in [info, *records]))
    return path


def warc_check(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-check", *map(str, files)], capture_output=True, text=True
    )


def rules(path: Path) -> set[str]:
    return {p.rule for p in check_file(path).problems}


def test_a_good_file_passes(tmp_path):
    gz = gzip.compress(BODY, mtime=0)
    good = response(gz, [("Content-Encoding", "gzip"), ("Content-Length", str(len(gz)))])
    meta = build_metadata(URL, good.record_id, [("role", "page")], NOW)
    conv = build_conversion(URL, good.record_id, "德国之声", NOW)
    path = write(tmp_path / "good.warc.gz", [good, meta, conv])
    out = warc_check(path)
    assert out.returncode == 0, out.stdout
    assert "OK, 4 records" in out.stdout


def test_the_three_classic_mistakes(tmp_path):
    # 1. body decoded but Content-Encoding: gzip left in place (digests are right, so warcio check passes)
    decoded = write(
        tmp_path / "decoded.warc.gz",
        [response(BODY, [("Content-Encoding", "gzip"), ("Content-Length", str(len(BODY)))])],
    )
    # 2. a stale Content-Length: the length of the gzip body, with the decoded body stored (written with warcio)
    stale = tmp_path / "stale.warc.gz"
    with open(stale, "wb") as f:
        w = WARCWriter(f, gzip=True, warc_version="1.1")
        w.write_record(w.create_warcinfo_record(stale.name, {"software": "test"}))
        http = StatusAndHeaders(
            "200 OK",
            [("Content-Type", "text/html"), ("Content-Length", str(len(gzip.compress(BODY))))],
            protocol="HTTP/1.1",
        )
        w.write_record(w.create_warc_record(URL, "response", payload=BytesIO(BODY), http_headers=http))
    # 3. a record without WARC-Date
    undated = write(
        tmp_path / "undated.warc.gz", [response(BODY, [("Content-Length", str(len(BODY)))], drop="WARC-Date")]
    )

    for path in (decoded, stale):
        assert subprocess.run(["warcio", "check", str(path)], capture_output=True).returncode == 0

    out = warc_check(decoded, stale, undated)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(
        line.startswith(f"{decoded}:")
        and "<urn:uuid:" in line
        and "http-content-encoding: Content-Encoding gzip" in line
        for line in lines
    ), lines
    assert any(line.startswith(f"{stale}:") and "http-content-length:" in line for line in lines), lines
    assert any(line.startswith(f"{undated}:") and "mandatory-field: WARC-Date missing" in line for line in lines), lines
    assert "3 of 3 files failed" in out.stderr


def test_field_policy_per_type_and_version(tmp_path):
    rid = new_record_id()
    info = build_warcinfo("x", [("software", "t")], NOW)
    info.headers.append(("WARC-Target-URI", URL))
    meta = build_metadata(URL, rid, [("role", "page")], NOW)
    meta.headers.append(("WARC-Payload-Digest", sha1_digest(meta.block)))
    conv = build_conversion(URL, rid, "text", NOW)
    conv.headers.append(("WARC-Concurrent-To", rid))
    path = tmp_path / "policy.warc.gz"
    path.write_bytes(b"".join(gzip_member(r.to_bytes(), 6) for r in (info, meta, conv)))
    problems = [str(p) for p in check_file(path).problems]
    assert any("WARC-Target-URI SHALL NOT appear on warcinfo" in p for p in problems), problems
    assert any("WARC-Payload-Digest SHALL NOT appear on metadata" in p for p in problems), problems
    assert any("WARC-Concurrent-To SHALL NOT appear on conversion" in p for p in problems), problems


def test_dates_and_revisit_profiles_must_match_the_version(tmp_path):
    rec = response(BODY, [("Content-Length", str(len(BODY)))], version="1.0")
    rec.headers = [(k, warc_date(NOW, "1.1") if k == "WARC-Date" else v) for k, v in rec.headers]
    path = write(tmp_path / "v10.warc.gz", [rec], version="1.0")
    assert "date-format" in rules(path)

    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    revisit = WarcRecord(
        "1.1",
        [
            ("WARC-Type", "revisit"),
            ("WARC-Record-ID", new_record_id()),
            ("WARC-Date", warc_date(NOW)),
            ("WARC-Target-URI", URL),
            ("Content-Type", "application/http; msgtype=response"),
            ("WARC-Profile", "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"),
            ("WARC-Refers-To", new_record_id()),
            ("WARC-Block-Digest", sha1_digest(head)),
        ],
        head,
    )
    path = write(tmp_path / "rev.warc.gz", [revisit])
    assert {"revisit-profile", "revisit-digest", "revisit-truncated"} <= rules(path)


def test_digests_order_and_members(tmp_path):
    rec = response(BODY, [("Content-Length", str(len(BODY)))])
    rec.block = rec.block[:-1] + b"!"  # block changed after the digests were made
    path = write(tmp_path / "digest.warc.gz", [rec])
    assert {"block-digest", "payload-digest"} <= rules(path)

    ok = response(BODY, [("Content-Length", str(len(BODY)))])
    no_info = tmp_path / "noinfo.warc.gz"
    no_info.write_bytes(gzip_member(ok.to_bytes(), 6))
    assert "warcinfo-first" in rules(no_info)

    info = build_warcinfo("x", [("software", "t")], NOW)
    two = tmp_path / "two.warc.gz"
    two.write_bytes(gzip_member(info.to_bytes() + ok.to_bytes(), 6))
    assert "one-record-per-member" in rules(two)

    cut = tmp_path / "cut.warc.gz"
    data = gzip_member(info.to_bytes(), 6) + gzip_member(ok.to_bytes(), 6)
    cut.write_bytes(data[:-10])
    assert "gzip-member" in rules(cut)


def test_a_folder_without_closed_files_is_not_a_pass(tmp_path: Path) -> None:
    empty = warc_check(tmp_path)
    assert empty.returncode == 1 and f"{tmp_path}: no closed WARC file to check" in empty.stderr
    (tmp_path / "archiver-20260101000000000-00000-h-1.warc.gz.open").write_bytes(b"")
    only_open = warc_check(tmp_path)
    assert only_open.returncode == 1 and "1 .open files not closed yet" in only_open.stderr
