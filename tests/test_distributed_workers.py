"""Real worker processes (`scrapy runspider` with the distributed profile) on one Redis queue, one killed with SIGKILL.

The spider here is a stand-in for the feeddump spider with the same contract (`job_request(job)`, one item of
the job's own kind per job plus cited-article items), so the queue, source, scheduler and feed storage are
tested end to end without depending on the DW stand-in; tests/test_distributed_e2e.py runs the real spider.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import test_distributed

from archiver.distributed.connection import Keys
from archiver.distributed.queue import JobQueue
from archiver.run.jobs import ArticleJob
from tests.loopback import QuietHandler, serving

# The Redis fixtures of test_distributed.py.
ROOT = test_distributed.ROOT
redis_server = test_distributed.redis_server
rconn = test_distributed.rconn

JOBS = 150

SPIDER = """
from dataclasses import dataclass

from scrapy import Request, Spider

from archiver.signals import article_finished


@dataclass
class JobItem:
    article_id: int
    kind: str
    status: str
    worker: str
    body: str


class JobSpider(Spider):
    name = "feeddump"

    async def start(self):
        return
        yield

    def job_request(self, job):
        url = f"{self.settings['TEST_SERVER']}/a/{job.article_id}"
        return Request(url, callback=self.parse_job, meta={"job": job}, dont_filter=True)

    def parse_job(self, response):
        job = response.meta["job"]
        worker = self.settings["ARCHIVER_WORKER_ID"]
        yield JobItem(job.article_id + 10_000_000, "reference", "complete", worker, "cited")
        item = JobItem(job.article_id, job.kind, "complete", worker, response.text)
        if job.article_id % 50 == 0:  # a recheck that found nothing new: finished, but no item
            self.crawler.signals.send_catch_log(article_finished, item=item, new_version=False)
            return
        yield item


class FailingPipeline:
    # Fails the items of ids divisible by 37: their articles must not count as done.

    def process_item(self, item):
        if item.kind != "reference" and item.article_id % 37 == 0:
            raise ValueError("disk full")
        return item
"""

SETTINGS = """
from settings.distributed import *

from archiver.addon import SETTINGS as _ARCHIVER_SETTINGS

# Only the components named here; the add-on's settings (downloader, item files that survive kill -9) where the
# profile has none, as the add-on sets them.
ADDONS = {}
for _name, _value in _ARCHIVER_SETTINGS.items():
    globals().setdefault(_name, _value)
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
    "archiver.run.report.RunReport": 500,
    "archiver.distributed.source.RedisJobSource": 600,
}
ITEM_PIPELINES = {"job_spider.FailingPipeline": 100}
DOWNLOADER_MIDDLEWARES = {}
TWISTED_DNS_RESOLVER = "scrapy.resolver.CachingThreadedResolver"
ROBOTSTXT_OBEY = False
AUTOTHROTTLE_ENABLED = False
CONCURRENT_REQUESTS = 4
LOG_LEVEL = "INFO"
ARCHIVER_POLL_INTERVAL = 0.2
ARCHIVER_HEARTBEAT_TTL = 2.0
ARCHIVER_IDLE_EXIT = 1
ARCHIVER_PROGRESS_INTERVAL = 0
"""


class SlowArticles(QuietHandler):
    """`/a/<id>` answers `article <id>` after a short wait, so a crawl lasts long enough to kill a worker in it."""

    def do_GET(self) -> None:
        time.sleep(0.15)
        self.reply(200, f"article {self.path.rsplit('/', 1)[1]}".encode(), {"Content-Type": "text/plain"})


@pytest.fixture
def article_server() -> Iterator[str]:
    with serving(SlowArticles) as host:
        yield f"http://{host}"


def start_worker(folder: Path, worker: str, redis_url: str, server: str) -> subprocess.Popen:
    out = folder / worker
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(folder / "job_spider.py")]
    for key, value in {
        "ARCHIVER_WORKER_ID": worker,
        "ARCHIVER_OUTPUT_DIR": str(out),
        "ARCHIVER_RUN_ID": f"run1-{worker}",
        "TEST_SERVER": server,
        "FEEDS": json.dumps({str(out / "items.jsonl"): {"format": "jsonlines"}}),
    }.items():
        cmd += ["-s", f"{key}={value}"]
    env = {
        **os.environ,
        "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}",
        "SCRAPY_SETTINGS_MODULE": "worker_settings",
        "REDIS_URL": redis_url,
    }
    log = (folder / f"{worker}.log").open("wb")
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def items_of(folder: Path, worker: str) -> list[dict]:
    path = folder / worker / "items.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def test_three_workers_one_killed(redis_server: str, rconn: redis.Redis, article_server: str, tmp_path: Path) -> None:
    (tmp_path / "job_spider.py").write_text(SPIDER)
    (tmp_path / "worker_settings.py").write_text(SETTINGS)
    queue = JobQueue(rconn, Keys("archiver"))
    ids = list(range(1000, 1000 + JOBS))
    for i in ids:
        queue.push(ArticleJob(article_id=i, kind="article", page_url=None, title=f"t{i}"))

    workers = {w: start_worker(tmp_path, w, redis_server, article_server) for w in ("w1", "w2", "w3")}
    # Kill w1 once it has archived some articles and holds more (items are written unbuffered, one line each).
    wait_for(lambda: len(items_of(tmp_path, "w1")) >= 10 and queue.held("w1"), 60, "w1 to be busy")
    held_at_kill = len(queue.held("w1"))
    workers["w1"].send_signal(signal.SIGKILL)
    for w in ("w2", "w3"):
        assert workers[w].wait(90) == 0, (tmp_path / f"{w}.log").read_text()[-3000:]
    workers["w1"].wait(10)

    # Every article archived exactly once across workers, the killed one included; all done in Redis
    # but those whose item failed in a pipeline; rechecks without a new item are done without an item.
    items = {w: items_of(tmp_path, w) for w in workers}
    articles = Counter(i["article_id"] for its in items.values() for i in its if i["kind"] != "reference")
    unchanged = [i for i in ids if i % 50 == 0]
    broken = [i for i in ids if i % 37 == 0]
    assert sorted(articles) == [i for i in ids if i not in unchanged and i not in broken]
    assert set(articles.values()) == {1}
    assert sorted(int(i) for i in rconn.hkeys("archiver:failed")) == broken
    assert all(queue.is_done(i) for i in unchanged) and not any(queue.is_done(i) for i in broken)
    assert all(
        i["body"] == f"article {i['article_id']}" for its in items.values() for i in its if i["kind"] == "article"
    )
    assert items["w1"], "w1 was killed before it archived anything"
    status = queue.status()
    assert (status["pending"], status["done"], status["held"]) == (0, JOBS - len(broken), {})
    # Nothing left behind: no processing list, no scheduler queue, no registered worker.
    leftovers = [*rconn.scan_iter("archiver:processing:*"), *rconn.scan_iter("archiver:requests:*")]
    assert leftovers == [] and rconn.smembers("archiver:workers") == set()
    # w1's jobs went back through the reaper, and the survivors said so.
    assert held_at_kill > 0
    logs = "".join((tmp_path / f"{w}.log").read_text() for w in ("w2", "w3"))
    assert "reaped dead workers w1" in logs
    # The survivors' reports add up to what they wrote; the killed worker left none.
    assert not (tmp_path / "w1" / "reports").exists()
    cmd = [sys.executable, "-m", "scrapy", "merge-report", "--json", "-s", f"ARCHIVER_OUTPUT_DIR={tmp_path}", "run1"]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "settings.default"}
    merged = json.loads(subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout)
    assert merged["items_written"] == len(items["w2"]) + len(items["w3"])
    assert [w["run_id"] for w in merged["workers"]] == ["run1-w2", "run1-w3"]


def test_worker_idles_until_work_arrives(
    redis_server: str, rconn: redis.Redis, article_server: str, tmp_path: Path
) -> None:
    (tmp_path / "job_spider.py").write_text(SPIDER)
    (tmp_path / "worker_settings.py").write_text(SETTINGS.replace("ARCHIVER_IDLE_EXIT = 1", "ARCHIVER_IDLE_EXIT = 0"))
    queue = JobQueue(rconn, Keys("archiver"))
    worker = start_worker(tmp_path, "w9", redis_server, article_server)
    try:
        wait_for(lambda: "w9" in queue.status()["alive"], 60, "the worker to register")
        queue.push(ArticleJob(article_id=77, kind="video", page_url=None))
        wait_for(lambda: queue.is_done(77), 60, "job 77")
        assert worker.poll() is None  # still waiting for work
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert [i["article_id"] for i in items_of(tmp_path, "w9") if i["kind"] == "video"] == [77]
    assert queue.status()["alive"] == []  # deregistered at close
