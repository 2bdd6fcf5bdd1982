"""Planning a run's rechecks against the state's size: 10k, 100k, 1M synthetic archived articles.

The state holds N archived articles published evenly over the last 12 years (ids in order), each last checked
within its interval of the default schedule, with a 5% backlog overdue by up to half an interval. Timed per size,
each on a fresh copy of the state file opened in a fresh process: the choice alone (count what is due, the per-step
candidates, their order by lateness), the whole planning as `RunPlan.plan_rechecks` does it (the choice, claiming
the budget and storing their jobs, counting what waits), and `scrapy schedule`'s outlook (one pass over an index,
an operator's command). Prints a table, writes bench/results/schedule.json.
Usage: python bench/schedule.py [--sizes 10000 100000 1000000] [--budget 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archiver.run.schedule import DAY, YEAR, RecheckPolicy, lateness  # noqa: E402
from archiver.state.store import State  # noqa: E402

NOW = 1_800_000_000.0  # the run's clock
SPAN = 12 * YEAR  # publication times spread over this many years before NOW


def build(path: Path, n: int, seed: int = 1) -> float:
    """A state with n archived articles scheduled by the default policy; seconds it took."""
    t = time.perf_counter()
    rng, policy = random.Random(seed), RecheckPolicy()
    State.open(path).close()  # the schema and its migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")

    def rows():
        for aid in range(1, n + 1):
            published = NOW - SPAN * (n - aid + 0.5) / n  # evenly: ~230 a day at 1M, as a large service
            first = policy.decide(published, None, NOW)
            backlog = rng.random() < 0.05
            last = NOW - first.interval * (1 + rng.random() / 2 if backlog else rng.random())
            last = max(last, published)
            d = policy.decide(published, last, last)
            yield (aid, f"https://www.dw.com/zh/x/a-{aid}", f"https://api.dw.com/api/detail/article/{aid}",
                   last, last, d.next_check, d.tier, published)  # fmt: skip

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO articles (article_id, kind, page_url, api_url, status, first_archived, last_checked, next_check, "
        "version, last_run_id, depth, first_seen, tier, published) "
        "VALUES (?, 'article', ?, ?, 'archived', ?, ?, ?, 1, 'history', 0, NULL, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t


def child(path: Path, budget: int) -> dict[str, float]:
    """One run's planning on a fresh copy of the state, in this (fresh) process."""
    from scrapy.utils.test import get_crawler

    from archiver.commands.schedule import outlook
    from archiver.run.plan import RunPlan

    settings = {
        "ARCHIVER_STATE_PATH": str(path),
        "ARCHIVER_OUTPUT_DIR": str(path.parent),
        "ARCHIVER_RUN_ID": "bench",
        "ARCHIVER_RECHECK_BUDGET": str(budget),
        "EXTENSIONS": {"archiver.state.extension.StateExtension": 10},
    }
    plan = RunPlan(get_crawler(settings_dict=settings))
    state = plan.state  # opened by the StateExtension outside the timing, as a run opens it at start
    t = time.perf_counter()  # the choice alone (no writes): what is due, the candidates, their order
    state.count_due(NOW)
    chosen = sorted(
        state.recheck_candidates(NOW, budget), key=lambda r: lateness(NOW, r.next_check, r.last_checked, r.tier)
    )
    select_s = time.perf_counter() - t
    assert len(chosen) >= min(budget, 1)
    t, cpu = time.perf_counter(), time.process_time()
    planned = plan.plan_rechecks(now=NOW)
    plan_s, plan_cpu = time.perf_counter() - t, time.process_time() - cpu
    stats = plan.stats.get_stats()
    t = time.perf_counter()
    o = outlook(state, state.recheck, budget, 3600.0, NOW)
    outlook_s = time.perf_counter() - t
    return {
        "select_seconds": select_s,
        "plan_seconds": plan_s,
        "plan_cpu_seconds": plan_cpu,
        "planned": planned,
        "due": stats["archiver/rechecks/due"],
        "left": stats["archiver/rechecks/skipped_budget"],
        "oldest_overdue_days": stats["archiver/rechecks/oldest_overdue"] / DAY,
        "outlook_seconds": outlook_s,
        "due_next_hour": o["due"]["1h"] - o["due"]["now"],
        "rechecks_per_day": o["rechecks_per_day"],
    }


def measure(n: int, workdir: Path, budget: int, repeat: int) -> dict[str, float]:
    built = workdir / f"built-{n}" / "state.sqlite3"
    built.parent.mkdir()
    build_s = build(built, n)
    size = sum(f.stat().st_size for f in built.parent.glob("state.sqlite3*"))
    runs = []
    for i in range(repeat):
        path = workdir / f"run-{n}-{i}" / "state.sqlite3"
        path.parent.mkdir()
        shutil.copyfile(built, path)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path), str(budget)], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout))
        shutil.rmtree(path.parent)
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary["plan_seconds_max"] = max(r["plan_seconds"] for r in runs)
    return {"archived": n, "build_seconds": build_s, "state_bytes": size, "bytes_per_article": size / n, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="planning runs per size (median and worst reported)")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), int(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="archiver-schedule-") as tmp:
        rows = [measure(n, Path(tmp), args.budget, args.repeat) for n in args.sizes]
    cols = [
        ("archived", "archived", ",.0f"), ("state MB", "state_mb", ".1f"), ("B/article", "bytes_per_article", ".0f"),
        ("due", "due", ",.0f"), ("planned", "planned", ",.0f"), ("waiting", "left", ",.0f"),
        ("select s", "select_seconds", ".3f"), ("plan s", "plan_seconds", ".3f"),
        ("worst s", "plan_seconds_max", ".3f"),
        ("plan CPU s", "plan_cpu_seconds", ".3f"), ("outlook s", "outlook_seconds", ".3f"),
        ("next hour", "due_next_hour", ",.0f"), ("per day", "rechecks_per_day", ",.0f"),
    ]  # fmt: skip
    print(" ".join(f"{title:>10}" for title, _, _ in cols))
    for r in rows:
        r["state_mb"] = r["state_bytes"] / 2**20
        print(" ".join(f"{r[key]:>10{fmt}}" for _, key, fmt in cols))
    report = {
        "bench": "schedule",
        "budget": args.budget,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "schedule.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
