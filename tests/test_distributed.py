"""Scale-out building blocks against a real redis-server: job queue, dupefilter, digest index, feeder, reports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from scrapy import Request
from scrapy.utils.test import get_crawler

from archiver.distributed.connection import Keys
from archiver.distributed.digests import RedisDigestIndex
from archiver.distributed.dupefilter import ExpiringDupeFilter
from archiver.distributed.feeder import Feeder
from archiver.distributed.merge import find_reports, merge_reports
from archiver.distributed.queue import JobQueue
from archiver.run.jobs import ArticleJob
from archiver.state.store import CaptureRow
from archiver.warc.dedupe import CaptureRef

ROOT = Path(__file__).resolve().parent.parent
DUMPS = ROOT / "tests" / "data" / "feed-dumps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of its own on a free loopback port; its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (.ci/run does it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    conn = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            conn.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with status {proc.returncode}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not answer PING within 10 s")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def rconn(redis_server: str) -> redis.Redis:
    """A str client on an emptied database."""
    conn = redis.Redis.from_url(redis_server, decode_responses=True)
    conn.flushdb()
    return conn


def job(article_id: int, title: str = "t") -> ArticleJob:
    return ArticleJob(
        article_id=article_id, kind="article", page_url=f"https://www.dw.com/zh/x/a-{article_id}", title=title
    )


# --- job queue ---


def test_take_ack_and_done_once(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    for w in ("w1", "w2", "w3"):
        q.beat(w, 60)
    assert [q.push(job(i)) for i in (1, 2, 3)] == [True, True, True]
    assert q.push(job(2)) is False  # already queued
    taken = q.take("w1", 2)
    assert [j.article_id for _, j in taken.jobs] == [1, 2]
    assert q.held("w1") == [raw for raw, _ in taken.jobs]
    assert q.take("w2", 5).jobs[0][1].article_id == 3
    raw1, _ = taken.jobs[0]
    assert q.ack("w1", raw1, 1, ok=True) is True
    assert q.is_done(1) and not q.is_done(2)
    assert q.push(job(1)) is False  # done: never pushed again
    assert q.outstanding() == 2  # w1 holds 2, w2 holds 3
    assert q.push(job(1), force=True) is True  # a recheck of an archived article
    assert [j.recheck for _, j in q.take("w3", 5).jobs] == [True]


def test_take_drops_jobs_done_meanwhile(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    q.push(job(7))
    rconn.rpush("t:jobs", job(7).to_json())  # the same article twice (e.g. requeued after a lapsed heartbeat)
    first = q.take("w1", 1).jobs[0]
    q.ack("w1", first[0], 7, ok=True)
    second = q.take("w2", 5)
    assert second.jobs == [] and second.skipped_done == 1
    assert q.held("w2") == [] and q.outstanding() == 0


def test_failed_ack_allows_a_later_push(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    q.push(job(5))
    raw, _ = q.take("w1", 1).jobs[0]
    q.ack("w1", raw, 5, ok=False, reason="api 503")
    assert not q.is_done(5) and not q.is_queued(5)
    assert q.status()["failed"] == 1
    assert q.push(job(5)) is True


def test_reaper_requeues_only_dead_workers(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    for i in range(1, 7):
        q.push(job(i))
    q.beat("alive", ttl=60)
    q.beat("dead", ttl=0.2)
    q.take("alive", 2)
    dead = [j.article_id for _, j in q.take("dead", 3).jobs]
    assert dead == [3, 4, 5]
    assert q.reap() == (0, [])  # heartbeat still fresh
    time.sleep(0.3)
    moved, reaped = q.reap()
    assert (moved, reaped) == (3, ["dead"])
    assert q.held("dead") == [] and "dead" not in rconn.smembers("t:workers")
    # Requeued jobs go to the head of the queue, in their order, before job 6.
    assert [j.article_id for _, j in q.take("alive", 10).jobs] == [3, 4, 5, 6]
    assert q.outstanding() == 6


def test_beat_reports_a_reaped_worker(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    assert q.beat("w", 0.1) is False  # new
    assert q.beat("w", 0.1) is True
    time.sleep(0.2)
    q.reap()
    assert q.beat("w", 10) is False


def test_every_job_is_in_exactly_one_place(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    q.beat("w", 60)
    for i in range(10):
        q.push(job(i + 1))
    taken = q.take("w", 10).jobs
    for raw, j in taken[:4]:
        q.ack("w", raw, j.article_id, ok=True)
    # Every job is in exactly one place: pending, held, or done.
    assert q.pending() + len(q.held("w")) + q.status()["done"] == 10


def test_requeue_own_jobs_at_close(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    q.push(job(1))
    q.push(job(2))
    q.beat("w", 60)
    q.take("w", 2)
    rconn.rpush("t:requests:w", "x")
    assert q.requeue("w") == 2
    assert q.pending() == 2 and not rconn.exists("t:requests:w") and not rconn.exists("t:heartbeat:w")


def test_references_are_claimed_once(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    assert q.claim_reference(42, ttl=0.2) is True
    assert q.claim_reference(42, ttl=0.2) is False
    time.sleep(0.3)
    assert q.claim_reference(42, ttl=0.2) is True  # due again after the recheck time


def test_done_bitmap_is_bounded_by_the_highest_id(rconn: redis.Redis) -> None:
    q = JobQueue(rconn, Keys("t"))
    for i in range(70_000_000, 70_000_000 + 100_000, 1):
        rconn.setbit("t:done", i, 1) if i % 1000 == 0 else None
    assert rconn.strlen("t:done") <= 70_100_000 // 8 + 1
    assert q.status()["done"] == 100


# --- dupefilter ---


def test_dupefilter_shared_and_expiring(rconn: redis.Redis, redis_server: str) -> None:
    settings = {"REDIS_URL": redis_server, "ARCHIVER_REDIS_PREFIX": "t", "ARCHIVER_DUPEFILTER_TTL": 0.3}
    a = ExpiringDupeFilter.from_crawler(get_crawler(settings_dict=settings))
    b = ExpiringDupeFilter.from_crawler(get_crawler(settings_dict=settings))
    r = Request("https://www.dw.com/zh/x/a-1")
    assert a.request_seen(r) is False
    assert b.request_seen(Request("https://www.dw.com/zh/x/a-1")) is True  # another worker saw it
    assert b.request_seen(Request("https://www.dw.com/zh/x/a-2")) is False
    keys = list(rconn.scan_iter("t:seen:*"))
    assert len(keys) == 2 and all(0 < rconn.pttl(k) <= 300 for k in keys)
    time.sleep(0.4)
    assert list(rconn.scan_iter("t:seen:*")) == []  # the memory is bounded by the window
    assert a.request_seen(r) is False


# --- digest index ---


def capture(url: str, when: str, digest: str, record: str, status: int = 200) -> CaptureRef:
    return CaptureRef(url, f"<urn:uuid:{record}>", when, digest, f"{record}.warc.gz", 0, 100, status)


def test_digest_index_shared_between_workers(rconn: redis.Redis) -> None:
    a = RedisDigestIndex(rconn, Keys("t"), run_id="run-a")
    b = RedisDigestIndex(rconn, Keys("t"))
    url = "https://api.dw.com/api/detail/article/1"
    a.add_capture(capture(url, "2026-01-01T00:00:00Z", "sha1:AAA", "a1"))
    a.add_capture(capture(url, "2026-01-02T00:00:00Z", "sha1:BBB", "a2"))
    a.add_capture(capture(url, "2026-01-03T00:00:00Z", "sha1:ZZZ", "a3", status=503))
    b.add_capture(capture(url, "2026-01-01T12:00:00Z", "sha1:AAA", "b1"))  # late writer, older capture
    row = b.find_by_digest(url, "sha1:AAA")
    assert isinstance(row, CaptureRow) and row.record_id == "<urn:uuid:a1>" and row.run_id == "run-a"
    assert b.last_capture(url).record_id == "<urn:uuid:a2>"  # newest 200, not the older late one
    assert b.last_capture(url, statuses=None).record_id == "<urn:uuid:a3>"
    assert b.last_capture(url, statuses=(404,)) is None
    assert b.find_by_digest(url, "sha1:CCC") is None
    assert b.last_capture("https://api.dw.com/api/detail/article/2") is None
    # Bounded: one key per URL naming the newest response per status and the first per digest; other rows dropped.
    (key,) = rconn.scan_iter("t:capture:*")
    entry = json.loads(rconn.get(key))
    assert entry["s"] == {"200": "<urn:uuid:a2>", "503": "<urn:uuid:a3>"}
    assert entry["d"] == {"sha1:AAA": "<urn:uuid:a1>", "sha1:BBB": "<urn:uuid:a2>", "sha1:ZZZ": "<urn:uuid:a3>"}
    assert sorted(entry["r"]) == ["<urn:uuid:a1>", "<urn:uuid:a2>", "<urn:uuid:a3>"]
    a.add_capture(capture(url, "2026-01-04T00:00:00Z", "sha1:AAA", "a4"))  # same payload again, newer
    entry = json.loads(rconn.get(key))
    assert entry["s"]["200"] == "<urn:uuid:a4>" and entry["d"]["sha1:AAA"] == "<urn:uuid:a1>"
    a.add_capture(capture(url, "2026-01-05T00:00:00Z", "sha1:BBB", "a5"))
    assert "<urn:uuid:a4>" not in json.loads(rconn.get(key))["r"]  # no longer named: dropped


def test_digest_index_ttl(rconn: redis.Redis) -> None:
    index = RedisDigestIndex(rconn, Keys("t"), ttl=0.2)
    index.add_capture(capture("https://x/1", "2026-01-01T00:00:00Z", "sha1:A", "r"))
    assert index.last_capture("https://x/1") is not None
    time.sleep(0.3)
    assert index.last_capture("https://x/1") is None


# --- feeder ---


def test_feeder_merges_duplicates_and_feeds_only_new_dumps(rconn: redis.Redis, tmp_path: Path) -> None:
    src = sorted(DUMPS.rglob("*.md"))
    folder = tmp_path / "dumps"
    folder.mkdir()
    for p in src:
        shutil.copy(p, folder / p.name)
    feeder = Feeder(rconn, Keys("t"))
    first = feeder.feed([str(folder)])
    d = first.to_dict()
    total = sum(d["dumps"].values())
    assert total == len(src)
    q = JobQueue(rconn, Keys("t"))
    pushed = q.pending()
    assert pushed == d["jobs"]["pushed"] == d["dumps"]["read"] > 0
    ids = [json.loads(raw)["article_id"] for raw in rconn.lrange("t:jobs", 0, -1)]
    assert len(ids) == len(set(ids))
    # Entries of an id named by several dumps are merged into one job's feed list.
    feeds = sum(len(json.loads(raw)["feed"]) for raw in rconn.lrange("t:jobs", 0, -1))
    assert feeds == d["dumps"]["read"] + d["reasons"].get("duplicate", {}).get("article already named", 0)
    # Feeding the same folder again pushes nothing.
    again = feeder.feed([str(folder)]).to_dict()
    assert again["jobs"]["pushed"] == 0 and q.pending() == pushed
    assert again["dumps"]["read"] == 0
    # A copy under another name is a duplicate; an article done since is skipped on a refeed.
    shutil.copy(src[0], folder / "copy-of-first.md")
    copied = feeder.feed([str(folder)]).to_dict()
    assert copied["reasons"]["duplicate"] == {"same content as a dump already fed": 1}
    raw, first_job = q.take("w", 1).jobs[0]
    q.ack("w", raw, first_job.article_id, ok=True)
    refed = feeder.feed([str(folder)], refeed=True).to_dict()
    assert refed["jobs"]["pushed"] == 0
    assert refed["jobs"]["already_archived"] == 1 and refed["jobs"]["already_queued"] == pushed - 1


def test_feed_redis_command(redis_server: str, tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_server, "SCRAPY_SETTINGS_MODULE": "settings.distributed"}
    redis.Redis.from_url(redis_server).flushdb()
    run = [sys.executable, "-m", "scrapy", "feed-redis"]
    out = subprocess.run([*run, "--json", str(DUMPS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    summary = json.loads(out.stdout)
    assert summary["jobs"]["pushed"] > 0
    assert (out.returncode == 1) == (summary["dumps"]["failed"] > 0)
    # Again, with the queue's counts first: nothing new is pushed.
    again = subprocess.run(
        [*run, "--status", str(DUMPS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    status, _, text = again.stdout.partition("\n}\n")
    assert json.loads(status + "}")["pending"] == summary["jobs"]["pushed"]
    assert "jobs: 0 pushed" in text and "skipped: already fed" in text


# --- reports ---


def report(run: str, complete: int, reason: str, warc: str) -> dict:
    return {
        "run_id": run,
        "spider": "feeddump",
        "started": f"2026-01-01T00:00:0{complete}Z",
        "finished": f"2026-01-01T01:00:0{complete}Z",
        "finish_reason": reason,
        "dumps": {"read": 0, "duplicate": 0, "skipped": 0, "failed": 0, "files": []},
        "articles": {"planned": 0, "complete": complete, "partial": 1, "failed": 0, "by_reason": {"http 503": 1}},
        "references": {"complete": 2, "partial": 0, "failed": 1, "by_reason": {"timeout": 1}},
        "images": {"archived": 3},
        "bytes": 1000,
        "requests": 10,
        "items_written": complete + 3,
        "items_files": [f"{run}.jsonl"],
        "warc_files": [{"path": warc, "ok": True, "records": 5, "problems": []}],
        "failures": [{"article_id": complete}],
    }


def test_merge_reports_and_command(tmp_path: Path) -> None:
    for worker, n in (("w1", 4), ("w2", 6)):
        folder = tmp_path / worker / "reports"
        folder.mkdir(parents=True)
        (folder / f"run7-{worker}.json").write_text(
            json.dumps(report(f"run7-{worker}", n, "finished", f"{worker}.warc.gz"))
        )
    found = find_reports(["run7"], tmp_path)
    assert len(found) == 2
    merged = merge_reports(((str(p), json.loads(p.read_text())) for p in found), "run7")
    assert merged["articles"] == {"planned": 0, "complete": 10, "partial": 2, "failed": 0, "by_reason": {"http 503": 2}}
    assert merged["references"]["by_reason"] == {"timeout": 2}
    assert merged["images"] == {"archived": 6} and merged["bytes"] == 2000 and merged["items_written"] == 16
    assert [w["path"] for w in merged["warc_files"]] == ["w1.warc.gz", "w2.warc.gz"]
    assert merged["started"] == "2026-01-01T00:00:04Z" and merged["finished"] == "2026-01-01T01:00:06Z"
    assert [w["run_id"] for w in merged["workers"]] == ["run7-w1", "run7-w2"]
    env = {"PATH": "/usr/bin:/bin", "SCRAPY_SETTINGS_MODULE": "settings.default"}
    cmd = [sys.executable, "-m", "scrapy", "merge-report", "-s", f"ARCHIVER_OUTPUT_DIR={tmp_path}", "run7"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "2 reports merged" in out.stdout and "10 complete, 2 partial" in out.stdout
    written = json.loads((tmp_path / "reports" / "run7-merged.json").read_text())
    assert written["items_written"] == 16
    # The merged report is not merged into itself next time.
    assert len(find_reports(["run7"], tmp_path)) == 2
