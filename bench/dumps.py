"""Bench the feed-dump reader: replicate the sample dumps to N files, parse them all, report files/s and RSS.

    python bench/dumps.py [--files 100000] [--small 10000] [--dir TMP] [--keep]

Each parse runs in a fresh child process (one core), so its peak RSS is its own; running it on the first
`--small` files and on all of them shows whether memory grows with the number of files.
Results: a table on stdout and bench/results/dumps.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import scratch  # noqa: E402 - after the path is set

SAMPLE = ROOT / "archiver" / "data" / "sample-dumps"
RESULTS = ROOT / "bench" / "results" / "dumps.json"
PER_FOLDER = 1000  # like the mirrors' per-day folders; a walk holds one folder listing at a time


def replicate(target: Path, count: int) -> list[Path]:
    """Write `count` copies of the sample dumps below `target`, PER_FOLDER per sub-folder."""
    sources = [p.read_bytes() for p in sorted(SAMPLE.glob("*.md"))]
    folders = []
    for start in range(0, count, PER_FOLDER):
        folder = target / f"d{start // PER_FOLDER:05d}"
        folder.mkdir(parents=True)
        folders.append(folder)
        for i in range(start, min(start + PER_FOLDER, count)):
            (folder / f"{i:07d}.md").write_bytes(sources[i % len(sources)])
    return folders


def parse(paths: list[str]) -> dict:
    """Child: parse everything under `paths` with iter_dumps; report counts, time and own peak RSS."""
    sys.path.insert(0, str(ROOT))
    from archiver.dw.dumps import iter_dumps

    status: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for result in iter_dumps(paths):
        status[result.status] += 1
        if result.entry is not None:
            kinds[result.entry.kind] += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    files = sum(status.values())
    return {
        "files": files,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "files_per_s": round(files / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "status": dict(status),
        "kinds": dict(kinds),
    }


def run_child(paths: list[Path]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, paths)],
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000, help="files to parse (default 100000)")
    ap.add_argument("--small", type=int, default=10_000, help="size of the smaller run (default 10000)")
    ap.add_argument("--dir", help="folder for the copies (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the copies")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(parse(args.child)))
        return

    with scratch("feeddump-bench-", args.keep, args.dir) as base:
        started = time.perf_counter()
        folders = replicate(base, args.files)
        written = time.perf_counter() - started
        small = run_child(folders[: max(1, args.small // PER_FOLDER)])
        full = run_child([base])

    print(f"sample: {len(list(SAMPLE.glob('*.md')))} dumps, copied to {args.files} files in {written:.1f} s")
    print(f"{'files':>8} {'seconds':>8} {'files/s':>8} {'peak RSS MB':>12}")
    for run in (small, full):
        print(f"{run['files']:>8} {run['seconds']:>8.2f} {run['files_per_s']:>8} {run['peak_rss_mb']:>12.1f}")
    print(f"statuses: {full['status']}  kinds: {full['kinds']}")
    result = {
        "bench": "feeddump",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "per_folder": PER_FOLDER,
        "runs": [small, full],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
