"""Bench the preservation hand-off: `scrapy fixity` against `sha256sum` on the same files, and `scrapy bag` with
hard links against copies.

    python bench/preservation.py [--files 4] [--mb 128] [--rounds 3]

An output folder of `--files` WARC-named files of `--mb` MB of random bytes each (incompressible, like gzip members),
recorded in its manifest. Both hashers read warm files (each file is read once before every timed pass), so the
figures compare hashing and I/O paths, not the disk. The fixity side is the command as users run it (a subprocess,
start-up included), and `fixity.run` in-process beside it. Results: a table and bench/results/preservation.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load1, scratch, table, write_result

from archiver.preservation import fixity, manifest
from archiver.preservation.bag import bag_info, build, select


def make_output(root: Path, files: int, mb: int) -> list[Path]:
    """An output folder with `files` recorded WARC-named files of random bytes."""
    (root / "warc").mkdir(parents=True)
    paths = []
    for i in range(files):
        path = root / "warc" / f"bench-20260101000000000-{i:05d}-host-1.warc.gz"
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        paths.append(path)
    manifest.record_closed(root, *paths)
    return paths


def warm(paths: list[Path]) -> None:
    """Read every file once, so the timed pass finds it in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    total_mb = args.files * args.mb * (1 << 20) / 1e6
    rows, raw = [], {"sha256sum": [], "scrapy fixity": [], "fixity.run": [], "bag links": [], "bag copies": []}
    with scratch("preservation-", args.keep, ROOT / "bench") as tmp:
        out = tmp / "out"
        paths = make_output(out, args.files, args.mb)
        scrapy = [sys.executable, "-m", "scrapy", "fixity", str(out), "--quiet"]
        sel = select(out)
        info = bag_info(out, sel)
        for r in range(args.rounds):
            warm(paths)
            raw["sha256sum"].append(
                timed(lambda: subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True))
            )
            warm(paths)
            raw["scrapy fixity"].append(
                timed(lambda: subprocess.run(scrapy, check=True, capture_output=True, cwd=ROOT))
            )
            warm(paths)
            raw["fixity.run"].append(timed(lambda: list(fixity.run(out, fixity.plan(out), None))))
            for label, link in (("bag links", True), ("bag copies", False)):
                warm(paths)
                target = tmp / f"bag-{r}-{link}"
                raw[label].append(timed(lambda target=target, link=link: build(out, sel, target, info, link=link)))
                shutil.rmtree(target)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in raw.items()), flush=True)
    base = statistics.median(raw["sha256sum"])
    for label, times in raw.items():
        med = statistics.median(times)
        rows.append(
            {
                "what": label,
                "median s": med,
                "MB/s": total_mb / med,
                "vs sha256sum": base / med if not label.startswith("bag") else "",
                "rounds": " ".join(f"{t:.2f}" for t in times),
            }
        )
    print(f"\n{args.files} files x {args.mb} MB = {total_mb:,.0f} MB, warm cache, load {load1()}")
    print(table(rows))
    write_result("preservation", {"files": args.files, "mb": args.mb, "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
