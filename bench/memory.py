"""Peak RSS of an archiving crawl at two (or more) corpus sizes: does memory stay flat as the corpus grows?

    python bench/memory.py [--sizes 10000,100000] [--media 0] [--refs-depth 0] [--tracemalloc 10000]

Each size: generated dumps (bench.common.make_corpus), the stand-in in its own process, `scrapy crawl feeddump`
(WARC, items, report; AutoThrottle off) with the RSS of the crawl process and its extraction workers summed and
sampled every 0.5 s. `--tracemalloc N` adds a diagnostic crawl of N articles under tracemalloc (slower; not timed)
and prints the allocation sites that grew most between an early and a late snapshot.
Prints a table and writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, ROOT, StandinProcess, load1, make_corpus, scratch, table, write_result
from bench.pipeline import run_pipeline

TARGET = 0.20  # the larger run's peak within 20% of the smaller's


def crawl_size(size: int, args: argparse.Namespace) -> dict:
    """Generate `size` articles, serve them, crawl them; the pipeline row plus the settings used."""
    with scratch(f"bench-memory-{size}-") as work:
        started = time.perf_counter()
        make_corpus(work / "dumps", size)
        generated = time.perf_counter() - started
        extra = ["-a", f"media={args.media}", "-a", f"refs_depth={args.refs_depth}"]
        with StandinProcess([work / "dumps"]) as standin:
            rss_log = RESULTS_DIR / f"memory-{size}{'-' + args.label if args.label else ''}-rss.csv"
            rss_log.unlink(missing_ok=True)
            row = run_pipeline(work / "dumps", work / "out", standin, extra, rss_log=rss_log)
        row["run"] = f"{size} articles"
        row["generate_seconds"] = round(generated, 1)
        row["warc_mb"] = round(sum(f.stat().st_size for f in (work / "out" / "warc").glob("*.warc.gz")) / 2**20, 1)
        return row


def traced_child(argv: list[str], out: str, first: float, every: float) -> None:
    """Child: run `scrapy crawl` in-process under tracemalloc; diff a snapshot at `first` s and the last one."""
    from scrapy.cmdline import execute

    tracemalloc.start(1)
    snaps: dict[str, tracemalloc.Snapshot] = {}
    stop = threading.Event()

    def take() -> None:
        if not stop.wait(first):
            snaps["first"] = tracemalloc.take_snapshot()
        while not stop.wait(every):
            snaps["last"] = tracemalloc.take_snapshot()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        execute(["scrapy", *argv])
    except SystemExit:
        pass
    finally:
        stop.set()
        lines = []
        if "first" in snaps and "last" in snaps:
            stats = snaps["last"].compare_to(snaps["first"], "lineno")
            lines = [str(s) for s in stats[:25]]
        Path(out).write_text("\n".join(lines) + "\n", "utf-8")


def trace_growth(size: int, args: argparse.Namespace) -> list[str]:
    """A crawl of `size` articles under tracemalloc; the top allocation growth between two snapshots."""
    with scratch("bench-memory-trace-") as work:
        make_corpus(work / "dumps", size)
        out = work / "growth.txt"
        with StandinProcess([work / "dumps"]) as standin:
            argv = ["crawl", "feeddump", "-a", f"dumps={work / 'dumps'}"]
            argv += ["-a", f"media={args.media}", "-a", f"refs_depth={args.refs_depth}"]
            for key, value in {
                "AUTOTHROTTLE_ENABLED": "False",
                "ARCHIVER_PROGRESS_INTERVAL": "0",
                "LOG_LEVEL": "WARNING",
                "ARCHIVER_STANDIN_ADDRESS": standin.address,
                "ARCHIVER_OUTPUT_DIR": str(work / "out"),
            }.items():
                argv += ["-s", f"{key}={value}"]
            cmd = [sys.executable, __file__, "--traced-child", str(out), "--", *argv]
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return out.read_text("utf-8").splitlines()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated article counts (default 10000,100000)")
    ap.add_argument("--media", default="0", help="spider arg media (default 0: no images)")
    ap.add_argument("--refs-depth", default="0", help="spider arg refs_depth (default 0: no cited articles)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="also trace allocation growth on N")
    ap.add_argument("--label", default="", help="results go to bench/results/memory-<label>.json")
    ap.add_argument("--traced-child", help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.traced_child:
        traced_child(args.rest, args.traced_child, first=30.0, every=15.0)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    name = "memory" + (f"-{args.label}" if args.label else "")
    rows = []
    for size in sizes:
        rows.append(crawl_size(size, args))
        write_result(name, {"sizes": sizes, "partial": True, "rows": rows})  # kept if a later size is cut
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["vs_smallest"] = round(row["peak_rss_mb"] / base, 3)
    columns = [
        "run",
        "seconds",
        "pages_per_s",
        "requests",
        "warc_mb",
        "peak_rss_mb",
        "peak_rss_crawl_mb",
        "vs_smallest",
        "load_before",
    ]
    print(table(rows, columns))
    growth = max(r["vs_smallest"] for r in rows) - 1
    verdict = "met" if growth <= TARGET else "NOT met"
    print(f"largest / smallest peak RSS: {1 + growth:.3f} (target within {TARGET:.0%}: {verdict})")
    print(f"spider args: media={args.media} refs_depth={args.refs_depth}; AutoThrottle off; RSS = crawl + workers")
    for row in rows:
        print(f"{row['run']}: RSS curve (s, tree MB, crawl MB) {row['rss_curve']}")
    traced = trace_growth(args.tracemalloc, args) if args.tracemalloc else []
    if traced:
        print(f"tracemalloc growth over a {args.tracemalloc}-article crawl (late snapshot vs one at 30 s):")
        print("\n".join(traced[:15]))
    path = write_result(
        name,
        {
            "sizes": sizes,
            "spider_args": {"media": args.media, "refs_depth": args.refs_depth},
            "rows": rows,
            "growth": round(growth, 3),
            "target": TARGET,
            "tracemalloc": {"articles": args.tracemalloc, "top_growth": traced},
            "load_after": load1(),
        },
    )
    print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
