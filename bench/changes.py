"""What finding changes costs: a recheck run over N archived articles with 1% edits against one with none.

One archive run (epoch 0, not timed) fills an output folder; copies of it are rechecked (ARCHIVER_RECHECK_AFTER=0)
against a stand-in at epoch 1, once with no revisions (content unchanged; the chrome differs, so every page is a
new response that is extracted and compared) and once with `edit@1` for 1% of the ids, in alternated order.
Reports Scrapy's crawl time, CPU seconds of the crawl, the ratio, edits found, and how the state grew
(history rows and file size). Target: the edited run costs at most 1.2x the unchanged one; the state grows by
the changed articles only. Usage: python bench/changes.py [--articles 5000] [--rounds 2] [--edit-share 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ROOT,
    StandinProcess,
    load1,
    make_corpus,
    scrapy_elapsed,
    scratch,
    table,
    write_result,
)

SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "ARCHIVER_PROGRESS_INTERVAL": "0",
    "LOG_LEVEL": "INFO",
    "ARCHIVER_RECHECK_AFTER": "0",
}


def crawl(dumps: Path, out: Path, address: str, *extra: str) -> dict[str, Any]:
    """One `scrapy crawl feeddump` (no images, no cited articles); Scrapy's crawl time and the child's CPU."""
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-a", f"dumps={dumps}", "-a", "media=0"]
    cmd += ["-a", "refs_depth=0"]
    for key, value in {**SETTINGS, "ARCHIVER_STANDIN_ADDRESS": address, "ARCHIVER_OUTPUT_DIR": str(out)}.items():
        cmd += ["-s", f"{key}={value}"]
    cmd += list(extra)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"crawl-{time.time():.0f}.log"
    started = os.times()
    with log.open("w") as fh:
        code = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    ended = os.times()
    if code != 0:
        raise SystemExit(f"crawl failed ({code}); see {log}")
    report = json.loads(max((out / "reports").glob("*.json"), key=os.path.getmtime).read_text("utf-8"))
    return {
        "seconds": scrapy_elapsed(log.read_text("utf-8", "replace")),
        "cpu_s": round(sum(ended[2:4]) - sum(started[2:4]), 1),
        "report": report,
    }


def history(out: Path) -> tuple[int, int]:
    """History rows and state file size (bytes, WAL included)."""
    state = out / "state.sqlite3"
    with sqlite3.connect(state) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = db.execute("SELECT count(*) FROM changes").fetchone()[0]
    return rows, state.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--edit-share", type=float, default=0.01)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with scratch("bench-changes-", args.keep) as tmp:
        dumps = tmp / "dumps"
        ids = make_corpus(dumps, args.articles)
        step = max(1, round(1 / args.edit_share))
        edited = ids[::step]
        revisions = ",".join(f"{i}:edit@1" for i in edited)
        base = tmp / "base"
        with StandinProcess([dumps]) as standin:
            crawl(dumps, base, standin.address)
        base_rows, base_size = history(base)
        plain = StandinProcess([dumps], options=["--epoch", "1"])
        edits = StandinProcess([dumps], options=["--epoch", "1", "--revisions", revisions])
        for n in range(args.rounds):
            order = [("unchanged", plain), ("1% edited", edits)]
            for name, standin in order if n % 2 == 0 else order[::-1]:
                out = tmp / f"r{n}-{name[:2]}"
                shutil.copytree(base, out)
                load = load1()
                with standin:
                    result = crawl(dumps, out, standin.address)
                rows_after, size_after = history(out)
                counts = result["report"]["changes"]["counts"]
                rows.append(
                    {
                        "round": n + 1,
                        "run": name,
                        "articles": args.articles,
                        "seconds": result["seconds"],
                        "cpu_s": result["cpu_s"],
                        "edited": counts["edited"],
                        "unchanged": counts["unchanged"],
                        "other": sum(v for k, v in counts.items() if k not in ("edited", "unchanged")),
                        "history_rows_added": rows_after - base_rows,
                        "state_kb_added": round((size_after - base_size) / 1024, 1),
                        "load": load,
                    }
                )
                print(table(rows[-1:]), flush=True)
                shutil.rmtree(out, ignore_errors=True)

    def median(run: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["run"] == run)

    summary = {
        "scheduled_edits": len(edited),
        "ratio_seconds": round(median("1% edited", "seconds") / median("unchanged", "seconds"), 3),
        "ratio_cpu": round(median("1% edited", "cpu_s") / median("unchanged", "cpu_s"), 3),
        "target": "<= 1.2",
    }
    print(table(rows))
    print(table([summary]))
    path = write_result("changes", {"rows": rows, "summary": summary, "load_end": load1()})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
