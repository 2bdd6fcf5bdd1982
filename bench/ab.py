"""A change against its base: the archiving crawl of two commits, alternated on one corpus and one stand-in.

    python bench/ab.py --base REV [--head REV] [--pairs 3] [--articles 3000] [--probe] [--set NAME=VALUE]

This machine's speed drifts by up to 20% within minutes (bench/RESULTS.md §12–§14), more than most changes are
worth. So each pair runs base and head back to back, in alternating order (base first, then head first, ...), and
the table gives each pair's ratio head / base besides the pages/s: the median of those ratios is the change's
effect. The stand-in's CPU seconds for the same work show how fast the machine was during each crawl.
`--head` defaults to the working tree (uncommitted changes included); a REV is unpacked with `git archive`.
`--probe` adds `bench/hostprobe.py` (slot occupancy of the API host, time per request there, event-loop lag).
Prints a table and writes bench/results/ab[-LABEL].json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, StandinProcess, make_corpus, scratch, table, write_result
from bench.hostprobe import probe_rows, probe_settings
from bench.pipeline import STEADY_WARC, run_pipeline

API_HOST = "api.dw.com"


def unpack(rev: str, target: Path) -> Path:
    """The files of commit `rev` in `target` (`git archive`), with the commit named in `.ab-commit`."""
    target.mkdir(parents=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "archive", commit], cwd=ROOT, stdout=archive, check=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(target, filter="data")
    (target / ".ab-commit").write_text(commit)
    shadow_metadata(target)
    return target


def shadow_metadata(tree: Path) -> None:
    """Package metadata in `tree` naming its own Scrapy commands, so that the installed checkout's do not load.

    Scrapy loads every `scrapy.commands` entry point installed; a commit that lacks a command the installed checkout
    declares would fail at start. importlib.metadata takes the first distribution of a name on sys.path, and the
    crawl runs with `tree` first on it.
    """
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    info = tree / f"{project['name']}-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: 0.0.0\n")
    groups = project.get("entry-points", {})
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
            for group, points in groups.items()
        )
    )


def crawl_row(side: str, pair: int, row: dict[str, Any], probe: Path | None) -> dict[str, Any]:
    """The figures of one crawl that the comparison needs, with its API host's probe figures if any."""
    articles = max(row["articles"], 1)
    out = {
        "side": side,
        "pair": pair,
        "pages_per_s": row["pages_per_s"],
        "crawl_cpu_ms_per_article": round(1000 * row["cpu_crawl_s"] / articles, 2),
        "workers_cpu_ms_per_article": round(1000 * row["cpu_workers_s"] / articles, 2),
        "cpu_standin_s": row["cpu_standin_s"],
        "warc_files_ok": row["warc_files_ok"],
    }
    if probe is not None and probe.exists():
        for host in probe_rows(side, json.loads(probe.read_text())):
            if host["host"] == API_HOST:
                out["api_ms_per_request"] = host["ms_per_request"]
                out["loop_lag_ms_mean_p90"] = host["loop_lag_ms_mean_p90"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the commit to compare against (any git revision)")
    ap.add_argument("--head", help="the commit to measure (default: the working tree)")
    ap.add_argument("--pairs", type=int, default=3, help="base/head pairs (default 3)")
    ap.add_argument("--articles", type=int, default=3000, help="generated articles per crawl (default 3000)")
    ap.add_argument("--probe", action="store_true", help="add bench/hostprobe.py to every crawl")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra setting, every crawl")
    ap.add_argument("--label", default="", help="name of this run in the JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder and every crawl's output")
    args = ap.parse_args()

    name = "ab" + (f"-{args.label}" if args.label else "")
    with ExitStack() as stack:
        work = stack.enter_context(scratch("bench-ab-", args.keep))
        trees = {
            "base": unpack(args.base, work / "base"),
            "head": unpack(args.head, work / "head") if args.head else ROOT,
        }
        commits = {
            side: (tree / ".ab-commit").read_text() if tree != ROOT else "working tree" for side, tree in trees.items()
        }
        dumps = work / "dumps"
        make_corpus(dumps, args.articles)
        standin = stack.enter_context(StandinProcess([dumps]))
        rows: list[dict[str, Any]] = []
        for pair in range(1, args.pairs + 1):
            order = ("base", "head") if pair % 2 else ("head", "base")  # a drift within the pairs hits both sides
            for side in order:
                out = work / f"out-{pair}-{side}"  # a fresh output folder: no state from the crawls before
                probe = work / f"probe-{pair}-{side}.json" if args.probe else None
                sets = [*args.set, *(probe_settings(probe) if probe is not None else [])]
                extra = [*STEADY_WARC, *(arg for setting in sets for arg in ("-s", setting))]
                row = run_pipeline(dumps, out, standin, extra, tree=trees[side])
                rows.append(crawl_row(side, pair, row, probe))
                if not args.keep:  # measured: its WARC files need not sit on the disk under the later crawls
                    shutil.rmtree(out)
                print(table([rows[-1]]), flush=True)
        rate = {(r["pair"], r["side"]): r["pages_per_s"] for r in rows}
        ratios = [round(rate[p, "head"] / rate[p, "base"], 3) for p in range(1, args.pairs + 1)]
        print(table(rows))
        print(f"base {commits['base']}, head {commits['head']}; {args.articles} articles, settings {args.set}")
        print(f"head / base pages/s per pair: {ratios}; median {statistics.median(ratios):.3f}")
        path = write_result(
            name,
            {"articles": args.articles, "commits": commits, "settings": args.set, "rows": rows, "ratios": ratios},
        )
        print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
