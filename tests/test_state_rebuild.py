"""End to end: a damaged, empty or missing state is refused with one line naming the fix, `scrapy state-rebuild`
rebuilds it from the output folder, and the next run neither fetches nor writes the archive again; records that
are gone (a WARC file cut by `warc-recover --force`) are fetched again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from crawl_support import ROOT, run_crawl

from archiver.state.store import ARCHIVED, FAILED, State

LIMIT = {"limit": "6"}
NOTHING_NEW = {"limit": "0"}  # no new article from the dumps: what a run does is what the state leaves it


@pytest.fixture(scope="module")
def archive(standin: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive") / "out"
    run = run_crawl(out, standin, args=LIMIT)
    assert run.returncode == 0, run.log[-3000:]
    return out


def copy_of(archive: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(archive, out)
    return out


def scrapy(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "scrapy", *args, "-s", f"ARCHIVER_OUTPUT_DIR={out}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    noise = os.urandom(8192)
    data[4096 : 4096 + len(noise)] = noise  # the header stays: SQLite opens it and finds the pages broken
    path.write_bytes(bytes(data))


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "ERROR" in line]


@pytest.mark.parametrize("fault", ["random bytes", "empty", "missing"])
def test_a_broken_state_is_refused_then_rebuilt_without_refetching(
    standin: Any, archive: Path, tmp_path: Path, fault: str
) -> None:
    out = copy_of(archive, tmp_path)
    state = out / "state.sqlite3"
    with State.open(state) as s:
        archived = s.count_articles(ARCHIVED)
    warcs = sorted(p.name for p in (out / "warc").iterdir())
    items = sorted(p.name for p in (out / "items").iterdir())
    if fault == "random bytes":
        damage(state)
    elif fault == "empty":
        state.write_bytes(b"")
    else:
        state.unlink()

    refused = run_crawl(out, standin, args=LIMIT)
    assert refused.returncode != 0 and "Traceback" not in refused.log, refused.log[-3000:]
    (line,) = error_lines(refused.log)
    assert str(state) in line and "scrapy state-rebuild" in line, line
    assert {"random bytes": "damaged", "empty": "is empty", "missing": "is missing"}[fault] in line
    assert sorted(p.name for p in (out / "warc").iterdir()) == warcs  # nothing written
    assert sorted(p.name for p in (out / "items").iterdir()) == items

    rebuilt = scrapy("state-rebuild", "--json", out=out)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    summary = json.loads(rebuilt.stdout)
    assert summary["articles_archived"] == archived and summary["articles_to_retry"] == 0
    assert summary["captures_missing"] == 0 and summary["runs"] == 1
    if fault != "missing":
        assert Path(summary["old_state_kept_as"]).exists()

    again = run_crawl(out, standin, args=NOTHING_NEW)
    assert again.returncode == 0, again.log[-3000:]
    report = again.report()
    assert report["outcome"]["ok"] and report["requests"] == 0 and report["items_written"] == 0  # nothing again
    assert sorted(p.name for p in (out / "warc").iterdir()) == warcs


def test_state_rebuild_refuses_a_sound_state(archive: Path, tmp_path: Path) -> None:
    out = copy_of(archive, tmp_path)
    proc = scrapy("state-rebuild", out=out)
    assert proc.returncode == 1 and "is sound" in proc.stdout


def test_records_cut_from_a_closed_warc_are_fetched_again(standin: Any, archive: Path, tmp_path: Path) -> None:
    out = copy_of(archive, tmp_path)
    (warc,) = sorted((out / "warc").glob("*.warc.gz"))
    items = [json.loads(line) for f in (out / "items").glob("*.jsonl") for line in f.read_text("utf-8").splitlines()]
    last = max((c for i in items for c in i["captures"] if c["role"] == "api"), key=lambda c: c["offset"])
    damaged = warc.read_bytes()[: last["offset"] + 36]
    warc.write_bytes(damaged)  # a closed file cut inside the record of its last API response

    left = scrapy("warc-recover", str(warc), out=out)
    assert left.returncode == 1 and "unchanged" in left.stdout and "Traceback" not in left.stderr, left.stdout
    assert warc.read_bytes() == damaged  # untouched, as it says

    forced = scrapy("warc-recover", "--force", str(warc), out=out)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "cut in place" in forced.stdout and "articles are fetched again" in forced.stdout
    kept = warc.stat().st_size
    cdxj = Path(f"{warc}.cdxj").read_text("utf-8").splitlines()
    assert all(int(json.loads(line.split(" ", 2)[2])["offset"]) < kept for line in cdxj)

    with State.open(out / "state.sqlite3") as state:
        gone = [r for r in state._query('SELECT url FROM captures WHERE "offset" >= ?', (kept,))]
    assert gone == []

    # warc-get of a record that is gone: one line, exit 1, no traceback
    lost = [c for i in items for c in i["captures"] if c["offset"] >= kept]
    assert lost
    got = scrapy("warc-get", lost[-1]["record_id"], out=out)
    assert got.returncode == 1 and "Traceback" not in got.stderr and len(got.stderr.strip().splitlines()) == 1

    rerun = run_crawl(out, standin, args=NOTHING_NEW)
    assert rerun.returncode == 0, rerun.log[-3000:]
    lost_urls = {c["url"] for c in lost if c["role"] in ("page", "api")}
    with State.open(out / "state.sqlite3") as state:
        assert state.count_articles(FAILED) == 0
        # fetched again as full responses in the new run's WARC file (an unchanged recheck emits no item)
        refetched = {
            r[0]
            for r in state._query(
                "SELECT url FROM captures WHERE run_id = ? AND record_type = 'response'", (rerun.report()["run_id"],)
            )
        }
    assert lost_urls and lost_urls <= refetched
