"""Soak: crawl >= 20,000 generated articles against the stand-in with a 5% fault rate; RSS must stay flat.

    python bench/soak.py [--articles 20000] [--fault-rate 0.05] [--seed 1] [--dir TMP] [--keep]

The dumps are the real ones from tests/data/feed-dumps with new article ids; the stand-in runs as its own
process (`python -m archiver.standin`), the crawl as another, whose RSS (and that of its extraction workers)
is sampled from /proc every few seconds. Afterwards every article is checked in the items, the report and
the state. Results: a table on stdout and bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import StandinProcess, rss_kb, scratch  # noqa: E402 - after the path is set

DUMPS = ROOT / "tests" / "data" / "feed-dumps"
RESULTS = ROOT / "bench" / "results" / "soak.json"
PER_FOLDER = 1000
FIRST_ID = 900_000_000  # far above DW's ids: generated ids never meet a real one
_HEADER_ID = re.compile(rb"\]\(https://www\.dw\.com/[^)\s]*/a-(\d+)\)")


def dw_sources() -> list[tuple[bytes, bytes]]:
    """(content, article id) of every DW dump in the test corpus."""
    sources = []
    for path in sorted(DUMPS.rglob("*.md")):
        data = path.read_bytes()
        match = _HEADER_ID.search(data)
        if match:
            sources.append((data, match.group(1)))
    return sources


def generate(target: Path, count: int) -> list[int]:
    """Write `count` dumps with fresh ids below `target` (PER_FOLDER per folder); return the ids."""
    sources = dw_sources()
    ids = []
    for i in range(count):
        data, old = sources[i % len(sources)]
        new = FIRST_ID + i
        folder = target / f"d{i // PER_FOLDER:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{new}.md").write_bytes(data.replace(b"/a-" + old, b"/a-" + str(new).encode()))
        ids.append(new)
    return ids


def children(pid: int) -> list[int]:
    """Direct children of a process (the extraction workers of the crawl)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the task ended meanwhile
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def crawl(dumps: Path, out: Path, address: str, interval: float) -> tuple[int, float, list[dict[str, Any]], str]:
    """Run the crawl; sample its RSS every `interval` seconds; return exit code, seconds, samples, log tail."""
    log = out / "crawl.log"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-a", f"dumps={dumps}"]
    settings = {
        "ARCHIVER_OUTPUT_DIR": str(out),
        "ARCHIVER_STANDIN_ADDRESS": address,
        "TWISTED_DNS_RESOLVER": "archiver.standin.routing.StandinResolver",
        "AUTOTHROTTLE_START_DELAY": "0",
        "DOWNLOAD_TIMEOUT": "10",
        "ARCHIVER_RETRY_WAIT_MAX": "10",
        "ARCHIVER_PROGRESS_INTERVAL": "60",
        "ARCHIVER_RUN_ID": "soak",
        # a loopback stand-in, not DW: more in flight than the polite defaults, to finish in minutes
        "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
        "AUTOTHROTTLE_TARGET_CONCURRENCY": "8",
    }
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    started = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        samples = []
        while proc.poll() is None:
            main = rss_kb(proc.pid)
            workers = sum(rss_kb(k) for k in children(proc.pid))
            if main:
                samples.append(
                    {"t": round(time.monotonic() - started, 1), "rss_mb": main / 1024, "workers_mb": workers / 1024}
                )
            time.sleep(interval)
    seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    return proc.returncode, seconds, samples, text


def account(out: Path, ids: list[int]) -> dict[str, Any]:
    """Check that every generated article is in the items, the report and the state."""
    from archiver.state.store import State

    items: dict[int, dict[str, Any]] = {}
    duplicates = 0
    for path in (out / "items").glob("*.jsonl"):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                if item["kind"] == "reference":
                    continue
                duplicates += item["article_id"] in items
                items[item["article_id"]] = item
    report = json.loads((out / "reports" / "soak.json").read_text(encoding="utf-8"))
    failures = {f["article_id"] for f in report["failures"] if f["kind"] != "reference"}
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    state_status: Counter[str] = Counter()
    with State.open(out / "state.sqlite3", lock_path=out / ".bench-lock") as state:
        for aid in ids:
            item = items.get(aid)
            row = state.get_article(aid)
            if item is None:
                problems.append(f"{aid}: no item")
                continue
            statuses[item["status"]] += 1
            if item["status"] != "complete" and (not item["errors"] or aid not in failures):
                problems.append(f"{aid}: {item['status']} without reason in item or report")
            if row is None or row.status == "claimed":
                problems.append(f"{aid}: state {row.status if row else 'missing'}")
            else:
                state_status[row.status] += 1
    a = report["articles"]
    if a["complete"] + a["partial"] + a["failed"] != len(ids) or a["planned"] != len(ids):
        problems.append(f"report counts {a} do not add up to {len(ids)}")
    return {
        "items": dict(statuses),
        "state": dict(state_status),
        "report_articles": {k: a[k] for k in ("planned", "complete", "partial", "failed")},
        "report_by_reason": a["by_reason"],
        "references": {k: report["references"][k] for k in ("complete", "partial", "failed")},
        "requests": report["requests"],
        "duplicate_items": duplicates,
        "warc_files": len(report["warc_files"]),
        "warc_failing": sum(1 for w in report["warc_files"] if not w["ok"]),
        "problems": problems[:50],
        "problem_count": len(problems),
    }


def at(samples: list[dict[str, Any]], share: float, key: str = "rss_mb") -> float:
    """The sample at a share of the run (0..1)."""
    if not samples:
        return 0.0
    return round(samples[min(len(samples) - 1, int(share * (len(samples) - 1)))][key], 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between RSS samples")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    with scratch("soak-", args.keep, args.dir) as base:
        dumps, out = base / "dumps", base / "out"
        ids = generate(dumps, args.articles)
        options = ["--fault-rate", str(args.fault_rate), "--slow-seconds", "20"]
        with StandinProcess([dumps], seed=args.seed, options=options) as standin:
            code, seconds, samples, log = crawl(dumps, out, standin.address, args.interval)
        tracebacks = log.count("Traceback")
        checked = account(out, ids)
        requests = checked["requests"]
        result = {
            "bench": "soak",
            "articles": args.articles,
            "fault_rate": args.fault_rate,
            "seed": args.seed,
            "exit_code": code,
            "seconds": round(seconds, 1),
            "articles_per_s": round(args.articles / seconds, 1),
            "requests_per_s": round(requests / seconds, 1),
            "rss_mb": {f"p{int(s * 100)}": at(samples, s) for s in (0.1, 0.5, 0.9)} | {"end": at(samples, 1.0)},
            "rss_max_mb": round(max((s["rss_mb"] for s in samples), default=0), 1),
            "workers_rss_mb": {f"p{int(s * 100)}": at(samples, s, "workers_mb") for s in (0.1, 0.5, 0.9, 1.0)},
            "tracebacks": tracebacks,
            **checked,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "samples": [
                {"t": s["t"], "rss_mb": round(s["rss_mb"], 1)} for s in samples[:: max(1, len(samples) // 200)]
            ],
        }
        growth = result["rss_mb"]["p90"] / max(result["rss_mb"]["p10"], 1)
        result["rss_growth_p10_p90"] = round(growth, 3)
        result["pass"] = code == 0 and not tracebacks and checked["problem_count"] == 0 and growth < 1.25
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print_table(result)
        return 0 if result["pass"] else 1


def print_table(r: dict[str, Any]) -> None:
    """The figures as a small table."""
    items = r["items"]
    rows = [
        ("articles", r["articles"]),
        (
            "complete / partial / failed",
            f"{items.get('complete', 0)} / {items.get('partial', 0)} / {items.get('failed', 0)}",
        ),
        ("references c / p / f", " / ".join(str(v) for v in r["references"].values())),
        ("state", r["state"]),
        ("duration s", r["seconds"]),
        ("articles/s, requests/s", f"{r['articles_per_s']}, {r['requests_per_s']}"),
        ("RSS MB 10% / 50% / 90% / end", " / ".join(str(v) for v in r["rss_mb"].values())),
        ("RSS max MB, growth 10%->90%", f"{r['rss_max_mb']}, x{r['rss_growth_p10_p90']}"),
        ("workers RSS MB 10/50/90/end", " / ".join(str(v) for v in r["workers_rss_mb"].values())),
        ("tracebacks, problems", f"{r['tracebacks']}, {r['problem_count']}"),
        ("WARC files (failing)", f"{r['warc_files']} ({r['warc_failing']})"),
        ("pass", r["pass"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
