"""Rolling files and crash safety: rollover by size, SIGKILL mid-crawl, recovery that never touches live files."""

from __future__ import annotations

import itertools
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
from archiver.warc.writer import WET_SUFFIX, RollingWarcWriter, safe_hostname

# The digest index is the state (the default), which is its extension's.
WITH_STATE = {"EXTENSIONS": {"archiver.state.extension.StateExtension": 10}}


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


def test_closed_files_are_indexed_and_checked_in_a_child_process(tmp_path):
    """In a child process, so the crawl keeps no memory of it, at the crawl's own CPU priority (no tweak)."""
    from scrapy.utils.test import get_crawler

    from archiver.warc.extension import WarcWriterExtension
    from archiver.warc.finalize import finalize_file

    settings = {
        "ARCHIVER_OUTPUT_DIR": str(tmp_path),
        "ARCHIVER_RUN_ID": "t",
        "ARCHIVER_WARC_CAPTURE_INDEX": "archiver.warc.dedupe:memory_index",
    }
    archive = WarcWriterExtension.from_crawler(get_crawler(settings_dict=settings))
    writer = RollingWarcWriter(tmp_path)
    writer.write([build_conversion("https://a.example/", "<urn:uuid:1>", "text", datetime.now(UTC))])
    path = writer.close()
    pool = archive._finalizer_pool()
    try:
        assert pool.submit(os.getpid).result(60) != os.getpid()
        if hasattr(os, "sched_getscheduler"):
            assert pool.submit(os.sched_getscheduler, 0).result(60) == os.sched_getscheduler(0)
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


@pytest.mark.parametrize("suffix", [".warc.gz", WET_SUFFIX])
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
    writer = RollingWarcWriter(warc_dir, suffix=WET_SUFFIX)
    writer.write([build_conversion("https://example.org/", "<urn:uuid:x>", "text", datetime.now(UTC))])
    assert writer.current_name and writer.current_name.endswith(WET_SUFFIX)
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
    files = sorted(warc_dir.glob("*.warc.gz")) + sorted(warc_dir.glob(f"*{WET_SUFFIX}"))
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


FULL_DISK = """
import errno, json, resource, secrets, sys
from datetime import UTC, datetime
from pathlib import Path

from archiver.warc.records import build_conversion
from archiver.warc.writer import RollingWarcWriter, WarcWriteError

directory, limit, ballast = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
writer = RollingWarcWriter(directory)
out = {"written": [], "errors": []}


def write(i):
    text = secrets.token_hex(1500)  # about 2 KB once compressed
    try:
        for w in writer.write([build_conversion(f"https://example.org/{i}", "<urn:uuid:x>", text, datetime.now(UTC))]):
            out["written"].append([w.warc_file, w.offset, w.length, w.record_id])
    except WarcWriteError as e:
        out["errors"].append([str(e), e.errno, e.filename])


if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # files of this process cannot grow past `limit` bytes
for i in range(30):
    write(i)
out["files"] = sorted(p.name for p in directory.iterdir())
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again
if ballast:
    Path(ballast).unlink()
for i in range(30, 33):
    write(i)
out["closed"] = writer.close().name
print(json.dumps(out))
"""


def run_with_file_size_limit(directory: Path, limit: int, ballast: Path | None = None) -> dict:
    """Write 30 records with files limited to `limit` bytes (or on a disk full but for `ballast`), then 3 with room."""
    import json

    args = [str(directory), str(limit), str(ballast or "")]
    out = subprocess.run([sys.executable, "-c", FULL_DISK, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_a_failed_write_cuts_the_file_back_and_every_offset_stays_true(tmp_path):
    """A real file-size limit (RLIMIT_FSIZE): writes past it fail part-way with EFBIG, as on a full disk."""
    import errno

    assert_cut_back_on_failure(tmp_path, run_with_file_size_limit(tmp_path, 20_000), errno.EFBIG)


def test_a_full_disk_cuts_the_file_back_and_every_offset_stays_true(tmp_path):
    """A real full disk (a small tmpfs, where this machine lets us mount one): ENOSPC part-way through writes."""
    import errno

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here (the RLIMIT_FSIZE test covers the same path)")
    try:
        ballast = disk / "ballast"
        with open(ballast, "wb") as f:  # fill the disk but for about 24 KB
            f.write(b"\0" * (256 * 1024 - 24 * 1024))
        result = run_with_file_size_limit(disk / "warc", 0, ballast)
        assert_cut_back_on_failure(disk / "warc", result, errno.ENOSPC)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def assert_cut_back_on_failure(directory: Path, result: dict, code_expected: int) -> None:
    from archiver.warc.lookup import read_record_at

    assert result["errors"], "no write failed"
    for message, code, filename in result["errors"]:
        assert code == code_expected
        assert filename.endswith(".warc.gz.open") and filename in message
        assert "cut back to its last complete record" in message
    path = directory / result["closed"]
    written = result["written"]
    assert len(written) == 33 - len(result["errors"]) and len(written) > 3
    assert {w[0] for w in written} == {path.name}
    # the records follow each other with no gap and no stray byte, before and after the failures
    for (_, offset, length, _), (_, after, _, _) in itertools.pairwise(written):
        assert after == offset + length
    assert written[-1][1] + written[-1][2] == path.stat().st_size
    for _, offset, _, record_id in written:
        assert read_record_at(path, offset).get("WARC-Record-ID") == record_id
    result_check = check_file(path)
    assert result_check.ok, [str(p) for p in result_check.problems]
    assert result_check.records == len(written) + 1
    assert subprocess.run(["warcio", "check", str(path)], capture_output=True).returncode == 0


def test_a_file_whose_warcinfo_cannot_be_written_is_removed_not_left_without_one(tmp_path):
    result = run_with_file_size_limit(tmp_path, 100)
    assert len(result["errors"]) == 30 and result["files"] == []
    assert all("nothing written, file removed" in e[0] for e in result["errors"])
    path = tmp_path / result["closed"]
    assert len(result["written"]) == 3 and result["written"][0][1] > 0
    assert check_file(path).ok and records_of(path)[0].get("WARC-Type") == "warcinfo"


def test_wet_files_roll_over_and_are_recovered_checked_and_searched_like_capture_files(tmp_path):
    from archiver.warc.lookup import find_by_record_id, read_record_at
    from archiver.warc.records import WRITER_SOFTWARE
    from archiver.warc.writer import WET_SUFFIX, warc_files

    warc_dir = tmp_path / "warc"
    wet = RollingWarcWriter(warc_dir, suffix=WET_SUFFIX, max_size=6000)
    captures = RollingWarcWriter(warc_dir)
    captures.write([build_conversion("https://example.org/c", "<urn:uuid:c>", "capture file", datetime.now(UTC))])
    written = []
    for i in range(6):
        text = f"正文 {i} " + os.urandom(1500).hex()
        written += wet.write([build_conversion(f"https://example.org/{i}", f"<urn:uuid:{i}>", text, datetime.now(UTC))])
    assert wet.current_name.endswith(".warc.wet.gz") and captures.current_name.endswith(".warc.gz")
    wet.close()
    assert len(wet.closed_files) >= 2 and all(p.name.endswith(".warc.wet.gz") for p in wet.closed_files)
    for path in wet.closed_files:
        recs = records_of(path)
        assert recs[0].get("WARC-Type") == "warcinfo" and recs[0].get("WARC-Filename") == path.name
        assert recs[0].block.startswith(f"software: {WRITER_SOFTWARE}\r\n".encode())  # named even if not given
        assert check_file(path).ok
    found = find_by_record_id(tmp_path, written[-1].record_id)  # no items: found by scanning the files
    assert found is not None and (found.warc_file.name, found.offset) == (written[-1].warc_file, written[-1].offset)
    assert read_record_at(found.warc_file, found.offset).get("WARC-Record-ID") == written[-1].record_id
    captures.close()

    # a WET file left `.open` by a dead writer is recovered like a capture file, by the crawl and the command
    src = wet.closed_files[0]
    orphan = warc_dir / f"archiver-20240101000000000-00000-{safe_hostname()}-{dead_pid()}.warc.wet.gz.open"
    orphan.write_bytes(src.read_bytes()[:-5])
    assert orphans(warc_dir) == [orphan]
    out = subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-recover", str(warc_dir)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout
    recovered = orphan.with_name(orphan.name.removesuffix(".open"))
    assert f"{recovered}: renamed to {recovered.name}: {len(records_of(src)) - 1} records kept" in out.stdout
    assert recovered in warc_files(warc_dir) and not warc_files(warc_dir, open_files=True)
    out = subprocess.run([sys.executable, "-m", "scrapy", "warc-check", str(warc_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    checked = {line.split(": OK")[0] for line in out.stdout.splitlines()}
    assert checked == {str(p) for p in warc_files(warc_dir)} and len(checked) == len(wet.closed_files) + 2
    with pytest.raises(ValueError, match="suffix"):
        RollingWarcWriter(warc_dir, suffix=".warc")
