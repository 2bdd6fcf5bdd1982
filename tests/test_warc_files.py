"""Rolling files and crash safety: rollover by size, SIGKILL mid-crawl, recovery that never touches live files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warc_support import Server, items, run_crawl

from archiver.warc.check import check_file, iter_raw_records, parse_record
from archiver.warc.records import build_conversion
from archiver.warc.recover import orphans, recover_dir, recover_file
from archiver.warc.writer import TEXT_SUFFIX, RollingWarcWriter, safe_hostname


def records_of(path: Path) -> list:
    return [parse_record(raw.data) for raw in iter_raw_records(path)]


def test_rollover_gives_several_valid_files_each_starting_with_warcinfo(tmp_path):
    with Server() as server:
        urls = [f"{server.base}/big/20?k={i}" for i in range(12)]
        result = run_crawl(tmp_path, urls, settings={"ARCHIVER_WARC_MAX_SIZE": "60000", "CONCURRENT_REQUESTS": "4"})
    assert result.returncode == 0, result.stderr[-2000:]
    files = sorted((tmp_path / "out" / "warc").glob("*.warc.gz"))
    assert len(files) >= 4
    serials = [f.name.split("-")[2] for f in files]
    assert serials == [f"{i:05d}" for i in range(len(files))]
    for f in files:
        recs = records_of(f)
        assert recs[0].get("WARC-Type") == "warcinfo"
        assert recs[0].get("WARC-Filename") == f.name
        assert check_file(f).ok
        ids = {r.get("WARC-Record-ID") for r in recs}
        # the records of one exchange never span two files
        for r in recs:
            if r.get("WARC-Type") in ("request", "response", "metadata"):
                assert r.get("WARC-Concurrent-To") in ids
        assert f.stat().st_size <= 60000 or len(recs) == 4
        assert (f.parent / (f.name + ".cdxj")).exists()
    assert subprocess.run(["warcio", "check", *map(str, files)], capture_output=True).returncode == 0
    caps = [it["capture"] for it in items(tmp_path)]
    assert len(caps) == 12 and {c["warc_file"] for c in caps} <= {f.name for f in files}


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_closed_files_are_indexed_and_checked_at_idle_cpu_priority(tmp_path):
    from scrapy.utils.test import get_crawler

    from archiver.warc.extension import WarcWriterExtension, finalize_file

    crawler = get_crawler(settings_dict={"ARCHIVER_OUTPUT_DIR": str(tmp_path), "ARCHIVER_RUN_ID": "t"})
    archive = WarcWriterExtension.from_crawler(crawler)
    writer = RollingWarcWriter(tmp_path)
    writer.write([build_conversion("https://a.example/", "<urn:uuid:1>", "text", datetime.now(UTC))])
    path = writer.close()
    pool = archive._finalizer_pool()
    try:
        assert os.sched_getscheduler(0) != os.SCHED_IDLE
        assert pool.submit(os.sched_getscheduler, 0).result(60) == os.SCHED_IDLE
        done, result, error = pool.submit(finalize_file, path, "1.1", True).result(60)
        assert done == path and result.ok and error is None
        assert (path.parent / (path.name + ".cdxj")).exists()
    finally:
        pool.shutdown()


def test_sigkill_mid_crawl_then_the_next_run_recovers(tmp_path):
    with Server() as server:
        urls = [f"{server.base}/slow/{i}" for i in range(3000)]
        proc = run_crawl(tmp_path, urls, settings={"CONCURRENT_REQUESTS": "8"}, wait=False)
        warc_dir = tmp_path / "out" / "warc"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            opened = list(warc_dir.glob("*.open")) if warc_dir.exists() else []
            if opened and opened[0].stat().st_size > 100_000:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (orphan,) = list(warc_dir.glob("*.warc.gz.open"))
        assert orphans(warc_dir) == [orphan]

        again = run_crawl(
            tmp_path / "again", [f"{server.base}/page"], settings={"ARCHIVER_OUTPUT_DIR": str(tmp_path / "out")}
        )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "WARC recovery:" in again.stderr
    assert not list(warc_dir.glob("*.open"))
    files = sorted(warc_dir.glob("*.warc.gz"))
    assert len(files) == 2
    for f in files:
        result = check_file(f)
        assert result.ok, [str(p) for p in result.problems]
        assert (f.parent / (f.name + ".cdxj")).exists()
    assert subprocess.run(["warcio", "check", *map(str, files)], capture_output=True).returncode == 0


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def written_file(tmp_path: Path, n: int) -> Path:
    writer = RollingWarcWriter(tmp_path / "src")
    for i in range(n):
        writer.write(
            [build_conversion(f"https://example.org/{i}", "<urn:uuid:x>", "文本 " * 200 * (i + 1), datetime.now(UTC))]
        )
    return writer.close()


@pytest.mark.parametrize("suffix", [".warc.gz", TEXT_SUFFIX])
def test_warc_recover_cuts_at_the_last_complete_record(tmp_path, suffix):
    """Capture files and text files (`*.warc.wet.gz`) alike."""
    complete = written_file(tmp_path, 5)
    offsets = [raw.offset for raw in iter_raw_records(complete)]
    size = complete.stat().st_size
    warc_dir = tmp_path / "warc"
    warc_dir.mkdir()
    pid = dead_pid()
    for k, cut in enumerate((offsets[-1] + 7, (offsets[-1] + size) // 2, size - 3)):
        name = f"archiver-2024010100000000{k}-00000-{safe_hostname()}-{pid}{suffix}.open"
        data = complete.read_bytes()[:cut]
        (warc_dir / name).write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-recover", str(warc_dir)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout
    assert out.stdout.count("5 records kept") == 3 and out.stdout.count("valid") == 3
    assert len(list(warc_dir.glob(f"*{suffix}"))) == 3 and not list(warc_dir.glob("*.open"))
    for f in warc_dir.glob(f"*{suffix}"):
        assert f.stat().st_size == offsets[-1]
        assert check_file(f).ok


def test_recovery_never_touches_a_live_writer(tmp_path):
    warc_dir = tmp_path / "warc"
    # our own writer, still open (locked)
    writer = RollingWarcWriter(warc_dir, suffix=TEXT_SUFFIX)
    writer.write([build_conversion("https://example.org/", "<urn:uuid:x>", "text", datetime.now(UTC))])
    assert writer.current_name and writer.current_name.endswith(TEXT_SUFFIX)
    # a file named after a live process of this host (not locked)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        src = written_file(tmp_path, 2)
        live = warc_dir / f"archiver-20240101000000000-00000-{safe_hostname()}-{sleeper.pid}.warc.gz.open"
        shutil.copy(src, live)
        other_host = warc_dir / f"archiver-20240101000000000-00000-elsewhere-{dead_pid()}.warc.gz.open"
        shutil.copy(src, other_host)
        before = {p: p.read_bytes() for p in warc_dir.iterdir()}
        assert recover_dir(warc_dir) == []
        assert {p: p.read_bytes() for p in warc_dir.iterdir()} == before
        out = subprocess.run(
            [sys.executable, "-m", "scrapy", "warc-recover", str(live)], capture_output=True, text=True
        )
        assert out.returncode == 1 and "not recovered" in out.stdout
    finally:
        sleeper.kill()
        sleeper.wait()
    assert live.exists()
    rec = recover_file(live)  # its process is gone now
    assert rec.path is not None and check_file(rec.path).ok
    final = writer.close()
    assert final is not None and check_file(final).ok
    assert os.getpid() == writer.pid


def test_a_conversion_sent_while_closing_still_ends_in_a_closed_valid_file(tmp_path):
    with Server() as server:
        result = run_crawl(tmp_path, [server.base + "/page"], spider_args={"late": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    warc_dir = tmp_path / "out" / "warc"
    assert not list(warc_dir.glob("*.open"))
    files = sorted(warc_dir.glob("*.warc.gz")) + sorted(warc_dir.glob(f"*{TEXT_SUFFIX}"))
    recs = [r for f in files for r in records_of(f)]
    assert any(r.get("WARC-Type") == "conversion" and r.block == b"late text" for r in recs)
    assert all(check_file(f).ok for f in files)
    assert "ERROR" not in result.stderr


def test_archived_body_reads_a_response_back_also_from_the_file_still_open(tmp_path):
    import gzip

    from archiver.warc.lookup import archived_body
    from archiver.warc.records import Exchange, build_exchange

    html = "<html><body>正文</body></html>".encode()
    exchange = Exchange(
        url="https://www.dw.com/zh/x/a-1",
        method="GET",
        request_headers=[(b"Accept-Encoding", b"gzip")],
        request_body=b"",
        protocol=None,
        status=200,
        response_headers=[(b"Content-Type", b"text/html; charset=utf-8"), (b"Content-Encoding", b"gzip")],
        body=gzip.compress(html),
        fetched_at=datetime.now(UTC),
    )
    records = build_exchange(exchange, "1.1")
    writer = RollingWarcWriter(tmp_path)
    response = writer.write([records.request, records.response])[1]
    assert not (tmp_path / response.warc_file).exists()  # still being written: `.open`
    assert archived_body(tmp_path, response.warc_file, response.offset) == html
    writer.close()
    assert archived_body(tmp_path, response.warc_file, response.offset) == html
    with pytest.raises(ValueError, match="does not decode"):
        archived_body(tmp_path, response.warc_file, response.offset, max_size=len(html) - 1)
    with pytest.raises(ValueError, match="no HTTP response"):
        archived_body(tmp_path, response.warc_file, 0)  # the warcinfo record
