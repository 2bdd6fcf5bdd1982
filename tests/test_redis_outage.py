"""End to end: a real redis-server stopped under a running worker and started again (append-only file kept), and
one that does not come back. The worker never hangs, never acknowledges an article that is not archived, and
exits non-zero with its jobs left for the reaper when Redis stays away."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from test_distributed import free_port
from test_distributed_e2e import DUMPS, ROOT, worker_env
from test_distributed_workers import wait_for

from archiver.distributed.connection import Keys
from archiver.distributed.queue import JobQueue
from archiver.warc.lookup import read_record_at
from archiver.warc.recover import recover_dir


class RedisProcess:
    """A redis-server with an append-only file, that can be stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (.ci/run does it)")
        self.args = [exe, "--port", str(free_port()), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.url = f"redis://127.0.0.1:{self.args[2]}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        conn = redis.Redis.from_url(self.url)
        wait_for(lambda: self._pings(conn), 10, "redis-server to answer")

    @staticmethod
    def _pings(conn: redis.Redis) -> bool:
        try:
            return bool(conn.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    running = RedisProcess(tmp_path)
    running.start()
    yield running
    running.stop()


def start_worker(folder: Path, server: RedisProcess, standin: Any, **extra: str) -> subprocess.Popen:
    out = folder / "w1"
    settings = {
        **standin.scrapy_settings(),
        "ARCHIVER_WORKER_ID": "w1",
        "ARCHIVER_OUTPUT_DIR": str(out),
        "ARCHIVER_RUN_ID": "outage-w1",
        "ARCHIVER_IDLE_EXIT": "2",
        "ARCHIVER_HEARTBEAT_TTL": "60",
        "ARCHIVER_POLL_INTERVAL": "0.2",
        "ARCHIVER_EXTRACT_WORKERS": "1",
        "ARCHIVER_PROGRESS_INTERVAL": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "CONCURRENT_REQUESTS": "4",
        **extra,
    }
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump"]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    log = (folder / "w1.log").open("wb")
    return subprocess.Popen(cmd, cwd=ROOT, env=worker_env(server.url), stdout=log, stderr=subprocess.STDOUT)


def feed(server: RedisProcess) -> list[int]:
    cmd = [sys.executable, "-m", "scrapy", "feed-redis", "--json", str(DUMPS / "duty-machine-news")]
    subprocess.run(cmd, cwd=ROOT, env=worker_env(server.url), capture_output=True, text=True, timeout=120, check=True)
    conn = redis.Redis.from_url(server.url, decode_responses=True)
    return sorted(json.loads(raw)["article_id"] for raw in conn.lrange("archiver:jobs", 0, -1))


def items_of(folder: Path) -> list[dict[str, Any]]:
    files = (folder / "w1" / "items").glob("*.jsonl")
    return [json.loads(line) for f in files for line in f.read_text("utf-8").splitlines() if line.strip()]


def test_a_worker_survives_a_redis_restart_and_acks_only_what_is_archived(
    standin: Any, server: RedisProcess, tmp_path: Path
) -> None:
    ids = feed(server)
    assert len(ids) > 5
    conn = redis.Redis.from_url(server.url, decode_responses=True)
    queue = JobQueue(conn, Keys("archiver"))
    worker = start_worker(tmp_path, server, standin)
    log = tmp_path / "w1.log"
    try:
        wait_for(lambda: bool(items_of(tmp_path)) and worker.poll() is None, 90, "the first items")
        server.stop()
        time.sleep(5)
        assert worker.poll() is None, log.read_text()[-3000:]
        server.start()
        code = worker.wait(180)  # it must end by itself: no hang
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log.read_text()
    assert "Traceback" not in text, text[-5000:]
    assert "Redis unreachable" in text
    assert code in (0, 1), text[-3000:]

    items = {i["article_id"]: i for i in items_of(tmp_path) if i["kind"] != "reference"}
    recover_dir(tmp_path / "w1" / "warc")
    done = [a for a in ids if queue.is_done(a)]
    assert done
    for article_id in done:  # acknowledged as done: archived, every record where its item says
        item = items[article_id]
        assert item["status"] in ("complete", "partial"), item
        assert not any(e["reason"].startswith("WARC write failed") for e in item["errors"]), item["errors"]
        for cap in item["captures"]:
            record = read_record_at(tmp_path / "w1" / "warc" / cap["warc_file"], cap["offset"])
            assert record.get("WARC-Record-ID") == cap["record_id"]
    assert set(ids) == accounted(server, ids)  # the rest is queued, held for the reaper or failed: never dropped


def accounted(server: RedisProcess, fed: list[int]) -> set[int]:
    """Article ids Redis accounts for: done, pending, held by a worker (for the reaper) or failed with a reason."""
    conn = redis.Redis.from_url(server.url, decode_responses=True)
    queue = JobQueue(conn, Keys("archiver"))
    raws = conn.lrange("archiver:jobs", 0, -1) + [r for key in conn.scan_iter("archiver:processing:*") for r in
                                                  conn.lrange(key, 0, -1)]  # fmt: skip
    ids = {json.loads(raw)["article_id"] for raw in raws} | {int(a) for a in conn.hkeys("archiver:failed")}
    return ids | {a for a in fed if queue.is_done(a)}


def test_a_worker_exits_1_when_redis_stays_away(standin: Any, server: RedisProcess, tmp_path: Path) -> None:
    ids = feed(server)
    worker = start_worker(tmp_path, server, standin, ARCHIVER_HEARTBEAT_TTL="3")
    try:
        wait_for(lambda: bool(items_of(tmp_path)) and worker.poll() is None, 90, "the first items")
        server.stop()
        code = worker.wait(120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = (tmp_path / "w1.log").read_text()
    assert code == 1, text[-3000:]
    assert "Redis unreachable for" in text and "Traceback" not in text, text[-5000:]
    report = json.loads(next((tmp_path / "w1" / "reports").glob("*.json")).read_text("utf-8"))
    assert not report["outcome"]["ok"]
    server.start()  # what it held is still there, for the reaper
    assert set(ids) == accounted(server, ids)
