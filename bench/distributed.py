"""Bench the distributed profile: 1, 2, 3 workers on one stand-in corpus, and Redis memory per 100,000 URLs.

    python bench/distributed.py [--workers 1 2 3] [--dumps tests/data/feed-dumps] [--entries 100000]

Starts its own redis-server (loopback, free port) and DW stand-in, feeds the corpus with `scrapy feed-redis`, runs
N `scrapy crawl feeddump` workers (settings.distributed, AutoThrottle off, one extraction process each) and
measures pages/s from the first job taken to the last job acknowledged. Memory: the done bitmap, the dupefilter
and the digest index are filled with synthetic entries and measured with INFO memory / MEMORY USAGE.
Results: a table on stdout and bench/results/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "distributed.json"
sys.path.insert(0, str(ROOT))

from bench.common import StandinProcess, scratch  # noqa: E402 - after the path is set


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    conn = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            conn.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def env_for(redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SCRAPY_SETTINGS_MODULE": "settings.distributed",
        "REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }


def run_workers(n: int, redis_url: str, standin: dict[str, Any], dumps: str, folder: Path) -> dict[str, Any]:
    """Feed the corpus, run n workers to the end; pages/s over the crawl window."""
    import redis

    from archiver.distributed.connection import Keys
    from archiver.distributed.queue import JobQueue

    conn = redis.Redis.from_url(redis_url, decode_responses=True)
    conn.flushdb()
    feed = [sys.executable, "-m", "scrapy", "feed-redis", "--json", dumps]
    fed = json.loads(
        subprocess.run(feed, cwd=ROOT, env=env_for(redis_url), capture_output=True, check=False, text=True).stdout
    )
    jobs = fed["jobs"]["pushed"]
    queue = JobQueue(conn, Keys("archiver"))
    procs = []
    started = time.monotonic()
    for i in range(n):
        out = folder / f"n{n}" / f"w{i + 1}"
        out.mkdir(parents=True)
        settings = {
            "TWISTED_DNS_RESOLVER": "archiver.standin.routing.StandinResolver",
            "ARCHIVER_STANDIN_ADDRESS": standin["address"],
            "ARCHIVER_OUTPUT_DIR": str(out),
            "ARCHIVER_RUN_ID": f"bench-n{n}-w{i + 1}",
            "ARCHIVER_IDLE_EXIT": "1",
            "ARCHIVER_POLL_INTERVAL": "0.2",
            "ARCHIVER_EXTRACT_WORKERS": "1",
            "ARCHIVER_PROGRESS_INTERVAL": "0",
            "AUTOTHROTTLE_ENABLED": "False",
            "LOG_LEVEL": "WARNING",
        }
        cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump"]
        for key, value in settings.items():
            cmd += ["-s", f"{key}={value}"]
        log = (out / "worker.log").open("wb")
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env_for(redis_url), stdout=log, stderr=subprocess.STDOUT))
    first = last = None
    while any(p.poll() is None for p in procs):
        now = time.monotonic()
        if first is None and queue.pending() < jobs:
            first = now
        status = queue.status()
        if last is None and status["done"] + status["failed"] >= jobs:
            last = now
        time.sleep(0.05)
    ended = time.monotonic()
    last = last or ended
    reports = [json.loads(p.read_text()) for p in (folder / f"n{n}").glob("w*/reports/*.json")]
    pages = sum(r["requests"] for r in reports)
    window = max(last - (first or started), 1e-9)
    return {
        "workers": n,
        "jobs": jobs,
        "articles_done": queue.status()["done"],
        "pages": pages,
        "crawl_seconds": round(window, 2),
        "wall_seconds": round(ended - started, 2),
        "pages_per_s": round(pages / window, 1),
        "exit_codes": [p.returncode for p in procs],
    }


def memory(redis_url: str, entries: int) -> dict[str, Any]:
    """Bytes of Redis memory for `entries` archived URLs in each shared structure."""
    import redis
    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from archiver.distributed.connection import Keys
    from archiver.distributed.digests import RedisDigestIndex
    from archiver.warc.dedupe import CaptureRef

    conn = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys("mem")
    rng = random.Random(7)
    out: dict[str, Any] = {"entries": entries}

    def used() -> int:
        return int(conn.info("memory")["used_memory"])

    conn.flushdb()
    ids = rng.sample(range(40_000_000, 76_000_000), entries)  # DW article ids of the last decade
    base = used()
    pipe = conn.pipeline(transaction=False)
    for i in ids:
        pipe.setbit(keys.done, i, 1)
    pipe.execute()
    out["done_bitmap"] = {"used_memory": used() - base, "memory_usage": conn.memory_usage(keys.done)}

    conn.flushdb()
    fingerprinter = get_crawler().request_fingerprinter
    base = used()
    pipe = conn.pipeline(transaction=False)
    for i in ids:
        fp = fingerprinter.fingerprint(Request(f"https://api.dw.com/api/detail/article/{i}")).hex()
        pipe.set(keys.seen(fp), "", nx=True, px=86_400_000)
    pipe.execute()
    out["dupefilter"] = {"used_memory": used() - base}

    conn.flushdb()
    index = RedisDigestIndex(conn, keys)
    base = used()
    batch = []
    for n, i in enumerate(ids):
        url = f"https://www.dw.com/zh/%E5%BE%B7%E5%9B%BD%E4%B9%8B%E5%A3%B0%E6%96%B0%E9%97%BB/a-{i}"
        digest = f"sha1:{rng.getrandbits(160):040X}"[:37]
        warc = f"archiver-20260101000000000-{n // 5000:05d}-host-1234.warc.gz"
        batch.append(
            CaptureRef(
                url,
                f"<urn:uuid:{rng.getrandbits(128):032x}>",
                "2026-01-01T00:00:00.123456Z",
                digest,
                warc,
                n * 9000,
                9000,
                200,
            )
        )
        if len(batch) == 5000:
            index.add_captures(batch)
            batch = []
    index.add_captures(batch)
    out["digest_index"] = {"used_memory": used() - base}
    conn.flushdb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--dumps", default=str(ROOT / "tests" / "data" / "feed-dumps"))
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    with scratch("bench-distributed-") as tmp:
        redis_proc, redis_url = start_redis(tmp)
        try:
            with StandinProcess([args.dumps]) as standin:
                runs = [run_workers(n, redis_url, standin.info, args.dumps, tmp) for n in args.workers]
            mem = memory(redis_url, args.entries)
        finally:
            redis_proc.terminate()
            redis_proc.wait()

    cores = os.cpu_count()
    print(f"distributed bench on {cores} cores ({platform.python_implementation()} {platform.python_version()})")
    print(f"{'workers':>7} {'jobs':>5} {'done':>5} {'pages':>6} {'crawl s':>8} {'wall s':>7} {'pages/s':>8}")
    for r in runs:
        print(
            f"{r['workers']:>7} {r['jobs']:>5} {r['articles_done']:>5} {r['pages']:>6} {r['crawl_seconds']:>8}"
            f" {r['wall_seconds']:>7} {r['pages_per_s']:>8}"
        )
    print(f"Redis memory for {mem['entries']:,} archived URLs (INFO used_memory delta):")
    for name in ("done_bitmap", "dupefilter", "digest_index"):
        print(f"  {name:<13} {mem[name]['used_memory'] / 1e6:8.1f} MB")
    print(
        "  (the done bitmap is sized by the highest article id, not by the count: ~10 MB for ids up to 80 million;"
        " the dupefilter holds one TTL window only)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cores": cores, "runs": runs, "memory": mem}, indent=2) + "\n")


if __name__ == "__main__":
    main()
