"""End to end: `scrapy feed-redis` and three `scrapy crawl feeddump` workers (distributed profile) against the
DW stand-in; one worker is killed with SIGKILL halfway. Needs the stand-in (tests/conftest.py `standin`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import test_distributed
from test_distributed_workers import items_of, wait_for

from archiver.distributed.connection import Keys
from archiver.distributed.queue import JobQueue
from archiver.spiders.feeddump import FeedDumpSpider
from archiver.warc.check import check_file
from archiver.warc.recover import recover_dir

# The Redis fixtures of test_distributed.py.
ROOT = test_distributed.ROOT
redis_server = test_distributed.redis_server
rconn = test_distributed.rconn

# A subset of the test corpus keeps the run short: 19 + 13 + 15 dumps.
DUMP_FOLDERS = ("duty-machine-news", "duty-machine-news-transcribed", "nodebe4-news-beyond-wall-jekyll")
DUMPS = ROOT / "tests" / "data" / "feed-dumps"


def worker_env(redis_url: str) -> dict[str, str]:
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "settings.distributed", "REDIS_URL": redis_url}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_worker(folder: Path, worker: str, redis_url: str, standin_settings: dict[str, str]) -> subprocess.Popen:
    out = folder / worker
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        **standin_settings,
        "ARCHIVER_WORKER_ID": worker,
        "ARCHIVER_OUTPUT_DIR": str(out),
        "ARCHIVER_RUN_ID": f"e2e-{worker}",
        "FEEDS": json.dumps({str(out / "items.jsonl"): {"format": "jsonlines", "encoding": "utf-8"}}),
        "ARCHIVER_IDLE_EXIT": "1",
        "ARCHIVER_HEARTBEAT_TTL": "3",
        "ARCHIVER_POLL_INTERVAL": "0.2",
        "ARCHIVER_EXTRACT_WORKERS": "1",
        "ARCHIVER_PROGRESS_INTERVAL": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "LOG_LEVEL": "INFO",
    }
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump"]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    log = (folder / f"{worker}.log").open("wb")
    return subprocess.Popen(cmd, cwd=ROOT, env=worker_env(redis_url), stdout=log, stderr=subprocess.STDOUT)


def test_three_real_workers_one_killed(standin: Any, redis_server: str, rconn: redis.Redis, tmp_path: Path) -> None:
    # Jobs from Redis must be claimed in each worker's own state before they run (docs/distributed.md).
    assert hasattr(FeedDumpSpider, "accept_job"), "FeedDumpSpider.accept_job(job) -> Request | None is missing"
    feed = [sys.executable, "-m", "scrapy", "feed-redis", "--json", *(str(DUMPS / f) for f in DUMP_FOLDERS)]
    fed = subprocess.run(feed, cwd=ROOT, env=worker_env(redis_server), capture_output=True, text=True, timeout=120)
    summary = json.loads(fed.stdout)
    pushed = summary["jobs"]["pushed"]
    queue = JobQueue(rconn, Keys("archiver"))
    ids = sorted(json.loads(raw)["article_id"] for raw in rconn.lrange("archiver:jobs", 0, -1))
    assert len(ids) == pushed > 10

    workers = {w: start_worker(tmp_path, w, redis_server, standin.scrapy_settings()) for w in ("w1", "w2", "w3")}
    try:

        def w1_busy() -> bool:
            for w, proc in workers.items():
                assert proc.poll() is None, f"{w} exited early:\n" + (tmp_path / f"{w}.log").read_text()[-4000:]
            return len(items_of(tmp_path, "w1")) >= 2 and bool(queue.held("w1"))

        wait_for(w1_busy, 60, "w1 to be busy")
        workers["w1"].send_signal(signal.SIGKILL)
        for w in ("w2", "w3"):
            assert workers[w].wait(90) == 0, (tmp_path / f"{w}.log").read_text()[-4000:]
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    items = {w: items_of(tmp_path, w) for w in workers}
    articles = [i for its in items.values() for i in its if i["kind"] != "reference"]
    counts = Counter(i["article_id"] for i in articles)
    assert sorted(counts) == ids  # the union is complete
    assert set(counts.values()) == {1}  # and each article was archived once, across workers
    assert all(i["status"] in ("complete", "partial") for i in articles), [
        i for i in articles if i["status"] == "failed"
    ]
    status = queue.status()
    assert (status["pending"], status["held"], status["done"]) == (0, {}, len(ids))

    # Every WARC validates; the killed worker's open file is recovered first (cut at its last complete record).
    recover_dir(tmp_path / "w1" / "warc")
    warcs = sorted(tmp_path.glob("w*/warc/*.warc.gz"))
    assert warcs, "no WARC file written: is the WARC writer enabled in settings/default.py?"
    assert not list(tmp_path.glob("w*/warc/*.open"))
    for path in warcs:
        result = check_file(path)
        assert result.ok, (path, [str(p) for p in result.problems][:5])
    # Every item names WARC records in its own worker's files.
    for w, its in items.items():
        names = {p.name for p in (tmp_path / w / "warc").glob("*.warc.gz")}
        for item in its:
            for capture in item.get("captures", []):
                if capture.get("warc_file"):
                    assert Path(capture["warc_file"]).name in names, (w, capture)
