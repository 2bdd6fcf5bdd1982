"""Preservation hand-off against real crawls of the stand-in: digests at close, `scrapy fixity`, `scrapy bag`
(validated by the `bagit` library, replayed alone by pywb) and the revisit closure of bags and WACZ files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import bagit
import pytest
from crawl_support import ROOT, run_crawl
from warc_support import fetch, running_wayback, undo_encoding
from warcio.archiveiterator import ArchiveIterator

from archiver.preservation import fixity, manifest
from archiver.warc.cdxj import read_cdxj
from archiver.warc.lookup import archived_response, read_record_at
from archiver.warc.wacz import run_text_files

DUMPS = ROOT / "tests" / "data" / "feed-dumps" / "duty-machine-news"  # 19 dumps: two runs in a minute
BAGIT_LINE = re.compile(r"^[0-9a-f]{64}  \S+$")


def scrapy(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """A `scrapy` command of this project, run as users run it."""
    cmd = [sys.executable, "-m", "scrapy", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def crawled(standin, tmp_path_factory) -> Path:
    """One output folder, two runs: run-1 archives; run-2 rechecks everything unconditionally, so its pages are
    identical-payload revisits of run-1's responses."""
    out = tmp_path_factory.mktemp("preserve") / "out"
    first = run_crawl(out, standin, DUMPS, settings={"ARCHIVER_RUN_ID": "run-1"})
    assert first.returncode == 0, first.log[-3000:]
    later = {"ARCHIVER_RUN_ID": "run-2", "ARCHIVER_RECHECK_AFTER": "0", "ARCHIVER_CONDITIONAL_REQUESTS": "False"}
    second = run_crawl(out, standin, DUMPS, settings=later)
    assert second.returncode == 0, second.log[-3000:]
    return out


@pytest.fixture
def output(crawled, tmp_path) -> Path:
    """A private copy of the crawled output folder, for tests that damage it."""
    copy = tmp_path / "out"
    shutil.copytree(crawled, copy, ignore=shutil.ignore_patterns(".lock", "checks.jsonl"))
    return copy


def run_warc(out: Path, run: str) -> list[Path]:
    """The WARC files of one run (by the run id in their warcinfo)."""
    from archiver.warc.wacz import run_warcs

    return run_warcs(out / "warc", run)


def records(warcs: list[Path]) -> list[dict]:
    """Type, id, target and refers-to of every record of some WARC files, read with warcio."""
    found = []
    for w in warcs:
        with open(w, "rb") as f:
            for rec in ArchiveIterator(f):
                h = rec.rec_headers
                found.append(
                    {
                        "type": h.get_header("WARC-Type"),
                        "id": h.get_header("WARC-Record-ID"),
                        "uri": h.get_header("WARC-Target-URI"),
                        "refers_to": h.get_header("WARC-Refers-To"),
                        "status": rec.http_headers.get_statuscode() if rec.http_headers else None,
                    }
                )
    return found


def bag_info(bag: Path) -> dict[str, list[str]]:
    info: dict[str, list[str]] = {}
    for line in (bag / "bag-info.txt").read_text("utf-8").splitlines():
        name, _, value = line.partition(": ")
        info.setdefault(name, []).append(value)
    return info


# --- digests at close -----------------------------------------------------------------------------------


def test_every_closed_file_is_recorded_at_close_with_its_digest_and_size(crawled):
    lines = (crawled / "fixity" / manifest.DIGEST_MANIFEST).read_text("utf-8").splitlines()
    assert lines and all(BAGIT_LINE.match(line) for line in lines), lines[:3]
    recorded = manifest.load(crawled)
    expected = {"items/run-1.jsonl", "items/run-2.jsonl", "reports/run-1.json", "reports/run-2.json"}
    for w in sorted((crawled / "warc").glob("*.warc.gz")):
        expected |= {f"warc/{w.name}", f"warc/{w.name}.cdxj"}
    expected |= {f"warc/{w.name}" for w in (crawled / "warc").glob("*.warc.wet.gz")}  # text files: no CDXJ
    assert len(expected) >= 8
    assert set(recorded) == expected
    for rel, rec in recorded.items():
        data = (crawled / rel).read_bytes()
        assert rec.sha256 == hashlib.sha256(data).hexdigest(), rel
        assert rec.size == len(data), rel
    assert not any(".open" in line for line in lines)


def test_a_torn_manifest_line_is_cut_before_the_next_append_and_open_files_are_refused(tmp_path):
    (tmp_path / "warc").mkdir()
    a, b = tmp_path / "warc" / "a.warc.gz", tmp_path / "warc" / "b.warc.gz"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    manifest.record_closed(tmp_path, a)
    digests = tmp_path / "fixity" / manifest.DIGEST_MANIFEST
    with open(digests, "ab") as f:
        f.write(b"0123abc")  # what a power cut mid-append could leave
    assert set(manifest.load(tmp_path)) == {"warc/a.warc.gz"}
    manifest.record_closed(tmp_path, b)
    lines = digests.read_text("utf-8").splitlines(keepends=True)
    assert [line.split()[1] for line in lines] == ["warc/a.warc.gz", "warc/b.warc.gz"]
    assert all(line.endswith("\n") and BAGIT_LINE.match(line.strip()) for line in lines)
    opened = tmp_path / "warc" / "c.warc.gz.open"
    opened.write_bytes(b"being written")
    with pytest.raises(ValueError, match="still being written"):
        manifest.record_closed(tmp_path, opened)
    assert "c.warc.gz" not in digests.read_text("utf-8")


def test_kill_9_while_recording_leaves_only_whole_lines(tmp_path):
    (tmp_path / "warc").mkdir()
    for i in range(50):
        (tmp_path / "warc" / f"f{i}.warc.gz").write_bytes(os.urandom(20_000))
    script = (
        "import sys; from pathlib import Path; from archiver.preservation.manifest import record_closed\n"
        "root = Path(sys.argv[1])\n"
        "while True:\n"
        "    for p in sorted((root / 'warc').iterdir()): record_closed(root, p)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT)
    digests = tmp_path / "fixity" / manifest.DIGEST_MANIFEST
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not digests.exists() or digests.stat().st_size < 50_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = digests.read_bytes()
    assert len(data) >= 50_000 and data.endswith(b"\n")
    assert all(BAGIT_LINE.match(line) for line in data.decode().splitlines())
    sizes = (tmp_path / "fixity" / manifest.SIZE_MANIFEST).read_bytes()
    assert sizes.endswith(b"\n") and all(re.match(r"^\d+  \S+$", x) for x in sizes.decode().splitlines())


def test_warc_recover_records_the_file_it_closes(output):
    (w,) = run_warc(output, "run-2")
    data = w.read_bytes()
    orphan = output / "warc" / w.name.replace(w.name.rsplit("-", 1)[1], "999999.warc.gz.open")
    orphan.write_bytes(data[: len(data) - 100])  # a crawl killed mid-record, long ago (pid 999999 is gone)
    res = scrapy("warc-recover", output / "warc")
    assert res.returncode == 0, res.stdout + res.stderr
    closed = orphan.with_name(orphan.name.removesuffix(".open"))
    recorded = manifest.load(output)
    rel = f"warc/{closed.name}"
    assert recorded[rel].sha256 == hashlib.sha256(closed.read_bytes()).hexdigest()
    assert recorded[rel].size == closed.stat().st_size < len(data)
    assert f"{rel}.cdxj" in recorded
    assert not [p for p in recorded if p.endswith(".open")]


def test_a_merged_report_written_to_the_output_folder_is_recorded(output):
    res = scrapy("merge-report", "run-1", "-s", f"ARCHIVER_OUTPUT_DIR={output}")
    assert res.returncode == 0, res.stdout + res.stderr
    merged = output / "reports" / "run-1-merged.json"
    assert manifest.load(output)["reports/run-1-merged.json"].sha256 == hashlib.sha256(merged.read_bytes()).hexdigest()


# --- fixity ---------------------------------------------------------------------------------------------


def fixity_json(out: Path, *extra: str) -> tuple[int, list[dict]]:
    res = scrapy("fixity", out, "--json", *extra)
    return res.returncode, [json.loads(line) for line in res.stdout.splitlines()]


def test_hashing_streams_in_bounded_memory_and_reports_progress_in_mb_per_s(tmp_path):
    import io
    import tracemalloc

    big = tmp_path / "warc" / "big.warc.gz"
    big.parent.mkdir()
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    (rec,) = manifest.record_closed(tmp_path, big)
    stream = io.StringIO()
    progress = fixity.Progress(big.stat().st_size, stream, interval=0)
    tracemalloc.start()
    finding = fixity.check_one(tmp_path, rec, progress)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert finding.status == "ok" and finding.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert peak < 4 << 20  # a 64 MB file read through one 1 MiB buffer
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 32 and re.fullmatch(r"fixity: 67 of 67 MB read, [\d,]+ MB/s", lines[-1]), lines[-1]


def test_fixity_all_ok_exits_0(output):
    res = scrapy("fixity", output)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("ok ") == len(manifest.load(output))
    assert re.search(r"fixity: \d+ ok, 0 changed, 0 missing, 0 unrecorded; [\d.,]+ MB read in", res.stdout)


def test_fixity_names_changed_missing_and_unrecorded_files_and_bag_refuses_the_changed_one(output, tmp_path):
    (w2,) = run_warc(output, "run-2")
    data = bytearray(w2.read_bytes())
    data[len(data) // 2] ^= 0x01  # bit rot: same size, other digest
    w2.write_bytes(bytes(data))
    (w1,) = run_warc(output, "run-1")
    Path(f"{w1}.cdxj").unlink()
    shutil.copy(w1, output / "warc" / "copied-in.warc.gz")
    (output / "warc" / "still-writing.warc.gz.open").write_bytes(b"x")

    code, findings = fixity_json(output)
    assert code == 1
    status = {f["path"]: f["status"] for f in findings}
    assert status.pop(f"warc/{w2.name}") == "changed"
    assert status.pop(f"warc/{w1.name}.cdxj") == "missing"
    assert status.pop("warc/copied-in.warc.gz") == "unrecorded"
    assert set(status.values()) == {"ok"}
    assert not [p for p in status if p.endswith(".open")]
    res = scrapy("fixity", output, "--quiet")
    assert res.returncode == 1
    assert res.stdout.splitlines()[:3] == [
        f"missing    warc/{w1.name}.cdxj",
        "unrecorded warc/copied-in.warc.gz",
        f"changed    warc/{w2.name}",
    ]
    assert ", 1 changed, 1 missing, 1 unrecorded;" in res.stdout
    changed = next(f for f in findings if f["status"] == "changed")
    assert changed["size"] == changed["recorded_size"] and changed["sha256"] != changed["recorded_sha256"]

    target = tmp_path / "bag"
    res = scrapy("bag", "--output-dir", output, "--run", "run-2", "-o", target)
    assert res.returncode == 1
    assert f"warc/{w2.name}: changed" in res.stderr
    assert not target.exists() and not list(tmp_path.glob(".bag.partial-*"))


def test_fixity_adopt_records_unrecorded_files_as_they_are(output):
    shutil.copy(output / "items" / "run-1.jsonl", output / "items" / "older.jsonl")
    res = scrapy("fixity", output, "--adopt")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "recorded   items/older.jsonl" in res.stdout and ", 0 unrecorded;" in res.stdout
    assert manifest.load(output)["items/older.jsonl"].sha256 == manifest.load(output)["items/run-1.jsonl"].sha256


def test_fixity_budget_checks_the_longest_unchecked_first_and_covers_everything_in_turn(output):
    recorded = manifest.load(output)
    largest = max((output / p).stat().st_size for p in recorded)
    rounds = []
    for _ in range(len(recorded)):
        code, findings = fixity_json(output, "--budget", str(largest))
        assert code == 0
        rounds.append([f["path"] for f in findings])
        assert all(f["status"] == "ok" for f in findings)
        if {p for r in rounds for p in r} == set(recorded):
            break
    assert {p for r in rounds for p in r} == set(recorded)
    assert len(rounds) > 1 and all(rounds)  # the budget split the work; each run checked something
    seen: set[str] = set()
    for r in rounds:  # files never checked come first; a file is checked again only once all have been
        new = [p for p in r if p not in seen]
        assert r[: len(new)] == new
        seen |= set(r)
        assert len(new) == len(r) or seen == set(recorded)
    # the next run starts again with the file whose last check is the oldest
    checked = fixity.last_checked(output)
    _, again = fixity_json(output, "--budget", str(largest))
    assert next(f["path"] for f in again) == min(recorded, key=checked.__getitem__)


# --- bags -----------------------------------------------------------------------------------------------


def validate(bag: Path) -> bagit.Bag:
    """The bagit library's full validation: every payload digest re-read."""
    b = bagit.Bag(str(bag))
    b.validate(fast=False)
    return b


def assert_stands_alone(bag: Path, revisits_expected: bool = True) -> list[dict]:
    """Every revisit in the bag's WARC files refers to a response record inside the bag."""
    recs = records(sorted((bag / "data" / "warc").glob("*.warc.gz")))
    responses = {r["id"] for r in recs if r["type"] == "response"}
    revisits = [r for r in recs if r["type"] == "revisit"]
    assert bool(revisits) == revisits_expected
    assert [r for r in revisits if r["refers_to"] not in responses] == []
    return recs


def test_bag_of_the_first_run_is_valid_and_holds_its_files_as_hard_links(crawled, tmp_path):
    target = tmp_path / "run-1-bag"
    res = scrapy(
        "bag",
        "--output-dir",
        crawled,
        "--run",
        "run-1",
        "-o",
        target,
        "-s",
        'ARCHIVER_BAG_INFO={"Source-Organization": "Example Archive", "Contact-Email": "archive@example.org"}',
    )
    assert res.returncode == 0, res.stdout + res.stderr
    b = validate(target)
    assert b.version_info == (1, 0) and set(b.algorithms) == {"sha256", "sha512"}
    assert (target / "tagmanifest-sha256.txt").exists() and (target / "tagmanifest-sha512.txt").exists()
    (w1,) = run_warc(crawled, "run-1")
    payload = {p.relative_to(target / "data").as_posix() for p in (target / "data").rglob("*") if p.is_file()}
    texts = {f"warc/{w.name}" for w in run_text_files(crawled / "warc", "run-1")}  # the items' conversion records
    assert (
        texts
        and payload == {f"warc/{w1.name}", f"warc/{w1.name}.cdxj", "items/run-1.jsonl", "reports/run-1.json"} | texts
    )
    assert (target / "data" / "warc" / w1.name).stat().st_ino == w1.stat().st_ino  # no doubled disk
    info = bag_info(target)
    assert info["Source-Organization"] == ["Example Archive"] and info["Contact-Email"] == ["archive@example.org"]
    assert info["Archiver-Run"] == ["run-1"] and info["Bagging-Date"] and info["External-Description"]
    items = (crawled / "items" / "run-1.jsonl").read_text("utf-8").splitlines()
    articles = {json.loads(x)["article_id"] for x in items if json.loads(x)["kind"] != "reference"}
    assert info["Article-Count"] == [str(len(articles))] and articles
    size = sum((crawled / p).stat().st_size for p in payload)
    assert info["Payload-Oxum"] == [f"{size}.{len(payload)}"]
    report = json.loads((crawled / "reports" / "run-1.json").read_text("utf-8"))
    assert info["Crawl-Date-Range"] == [f"{report['started']}/{report['finished']}"]
    assert "Depends-On" not in info
    assert_stands_alone(target, revisits_expected=False)


def test_bag_of_a_later_run_carries_the_originals_and_pywb_replays_every_page_from_it_alone(
    crawled, pywb_bin, tmp_path
):
    target = tmp_path / "run-2-bag"
    res = scrapy("bag", "--output-dir", crawled, "--run", "run-2", "-o", target)
    assert res.returncode == 0, res.stdout + res.stderr
    validate(target)
    (w1,), (w2,) = run_warc(crawled, "run-1"), run_warc(crawled, "run-2")
    info = bag_info(target)
    assert info["Archiver-Run"] == ["run-2"]
    assert info["Revisit-Originals-Included"] == [f"warc/{w1.name}"]
    recs = assert_stands_alone(target)
    assert {r["refers_to"] for r in records([w2]) if r["type"] == "revisit"} <= {r["id"] for r in recs}

    # pywb over the bag alone: every page the later run captured, at the later run's time, 200 + archived body
    pages = [x for x in read_cdxj(Path(f"{w2}.cdxj")) if x.url.startswith("https://www.dw.com/zh/")]
    assert len(pages) >= 10 and {x.fields["mime"] for x in pages} == {"warc/revisit"}
    (tmp_path / "pywb").mkdir()
    with running_wayback(pywb_bin, target / "data" / "warc", tmp_path / "pywb") as wayback:
        for x in pages:
            status, headers, body = fetch(f"{wayback}/{x.timestamp}id_/{x.url}")
            assert status == 200, x.url
            _, archived = archived_response(crawled / "warc", read_record_at(w2, int(x.fields["offset"])))
            assert undo_encoding(headers, body) == archived and b"<html" in archived.lower(), x.url


def test_without_closure_the_originals_are_dependencies_and_the_bag_does_not_replay_alone(crawled, pywb_bin, tmp_path):
    target = tmp_path / "run-2.tar"
    res = scrapy("bag", "--output-dir", crawled, "--run", "run-2", "--no-closure", "--tar", "-o", target)
    assert res.returncode == 0, res.stdout + res.stderr
    with tarfile.open(target) as t:
        t.extractall(tmp_path / "x", filter="data")
    bag = tmp_path / "x" / "run-2"
    validate(bag)
    (w1,), (w2,) = run_warc(crawled, "run-1"), run_warc(crawled, "run-2")
    assert bag_info(bag)["Depends-On"] == [f"warc/{w1.name}"]
    assert not (bag / "data" / "warc" / w1.name).exists()
    page = next(x for x in read_cdxj(Path(f"{w2}.cdxj")) if x.url.startswith("https://www.dw.com/zh/"))
    (tmp_path / "pywb").mkdir()
    with running_wayback(pywb_bin, bag / "data" / "warc", tmp_path / "pywb") as wayback:
        status, _, _ = fetch(f"{wayback}/{page.timestamp}id_/{page.url}")
    assert status != 200  # the revisit's original is not there: the gap closure fills


def test_kill_9_during_bag_leaves_no_bag_and_the_next_bag_succeeds(output, tmp_path):
    big = output / "items" / "big.jsonl"
    line = json.dumps({"article_id": 1, "kind": "article", "text": "x" * 1000}) + "\n"
    with open(big, "w") as f:
        for _ in range(150_000):
            f.write(line)
    manifest.record_closed(output, big)
    target = tmp_path / "bags" / "all"
    cmd = [sys.executable, "-m", "scrapy", "bag", "--output-dir", str(output), "-o", str(target)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    partial = []
    while time.monotonic() < deadline and not partial and proc.poll() is None:
        partial = list(target.parent.glob(".all.partial-*")) if target.parent.exists() else []
        time.sleep(0.002)
    assert partial, "the bag finished before it could be killed"
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    assert list(target.parent.glob(".all.partial-*"))
    res = scrapy("bag", "--output-dir", output, "-o", target)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not list(target.parent.glob(".all.partial-*"))  # what the killed run left is cleared
    validate(target)
    assert (target / "data" / "items" / "big.jsonl").exists()


def test_bag_refuses_an_unrecorded_file_by_name_and_never_takes_open_files(output, tmp_path):
    shutil.copy(output / "items" / "run-1.jsonl", output / "items" / "copied-in.jsonl")
    (output / "warc" / "stray.warc.gz.open").write_bytes(b"being written")
    res = scrapy("bag", "--output-dir", output, "-o", tmp_path / "b")
    assert res.returncode == 1 and "items/copied-in.jsonl: unrecorded" in res.stderr
    assert ".open" not in res.stderr and not (tmp_path / "b").exists()
    (output / "items" / "copied-in.jsonl").unlink()
    res = scrapy("bag", "--output-dir", output, "-o", tmp_path / "b", "--copy")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(0 hard links, " in res.stdout
    validate(tmp_path / "b")
    payload = [p for p in (tmp_path / "b" / "data").rglob("*") if p.is_file()]
    assert len(payload) >= 8 and not [p for p in payload if p.name.endswith(".open")]
    assert all(p.stat().st_ino != (output / p.relative_to(tmp_path / "b" / "data")).stat().st_ino for p in payload)


def test_a_bag_on_another_file_system_gets_copies(output, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == output.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the output folder")
    target = shm / f"archiver-test-bag-{os.getpid()}"
    try:
        res = scrapy("bag", "--output-dir", output, "--run", "run-1", "-o", target)
        assert res.returncode == 0, res.stdout + res.stderr
        payload = 4 + len(run_text_files(output / "warc", "run-1"))  # WARC, CDXJ, items, report, text files
        assert f"(0 hard links, {payload} copies)" in res.stdout  # os.link fails across file systems: copied instead
        validate(target)
    finally:
        shutil.rmtree(target, ignore_errors=True)


# --- WACZ -----------------------------------------------------------------------------------------------


def test_wacz_of_a_later_run_carries_the_warc_files_its_revisits_need_and_replays_them(crawled, pywb_bin, tmp_path):
    wacz = tmp_path / "run-2.wacz"
    res = scrapy("wacz", "--run", "run-2", "--output-dir", crawled, "-o", wacz)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "validate passed" in res.stdout
    (w1,), (w2,) = run_warc(crawled, "run-1"), run_warc(crawled, "run-2")
    with zipfile.ZipFile(wacz) as z:
        archived = sorted(z.getinfo(n).file_size for n in z.namelist() if n.startswith("archive/"))
    assert archived == sorted([w1.stat().st_size, w2.stat().st_size])
    pages = [x for x in read_cdxj(Path(f"{w2}.cdxj")) if x.url.startswith("https://www.dw.com/zh/")]
    (tmp_path / "pywb").mkdir()
    with running_wayback(pywb_bin, None, tmp_path / "pywb", wacz=wacz) as wayback:
        for x in pages:
            status, headers, body = fetch(f"{wayback}/{x.timestamp}id_/{x.url}")
            _, archived_body = archived_response(crawled / "warc", read_record_at(w2, int(x.fields["offset"])))
            assert status == 200 and undo_encoding(headers, body) == archived_body, x.url
