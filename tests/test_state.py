"""The SQLite state: schema and migrations, re-run decisions, failures, captures, run lock, kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scrapy import signals
from scrapy.utils.test import get_crawler

from archiver.state import store as state_mod
from archiver.state.store import (
    ARCHIVED,
    CLAIMED,
    FAILED,
    GIVEN_UP,
    SCHEMA_VERSION,
    CaptureRow,
    RetryPolicy,
    State,
    StateError,
    StateLocked,
)

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0


@pytest.fixture
def st(tmp_path: Path) -> State:
    s = State.open(tmp_path / "state.sqlite3", retry=RetryPolicy(max_attempts=3, base=100, cap=250))
    yield s
    s.close()


def claim(s: State, aid: int, run: str, now: float, after: float = DAY, **kw):
    return s.claim_article(
        aid,
        kind="article",
        page_url=f"https://www.dw.com/zh/x/a-{aid}",
        api_url=f"https://api.dw.com/api/detail/article/{aid}",
        run_id=run,
        now=now,
        recheck_after=after,
        **kw,
    )


# --- schema ---


def test_open_creates_versioned_wal_schema(tmp_path: Path) -> None:
    with State.open(tmp_path / "out" / "state.sqlite3") as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.integrity_check() == "ok"
    conn = sqlite3.connect(tmp_path / "out" / "state.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"dumps", "articles", "captures", "failures", "runs"} <= tables
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"captures_url_time", "captures_url_digest", "articles_status_next"} <= indexes


def _v1_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in state_mod.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO articles (article_id, kind, status, first_archived, last_checked, next_check, version, "
        "last_run_id) VALUES (7, 'article', 'archived', 10, 10, 20, 1, 'old')"
    )
    conn.execute("INSERT INTO failures (url, attempts, reason) VALUES ('https://x/1', 2, 'HTTP 500')")
    conn.execute("INSERT INTO runs (run_id, started, outcome) VALUES ('old', 1, 'finished')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_migrates_an_older_file_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _v1_file(path)
    with State.open(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 3
        assert s.count_jobs() == 0  # v3 added the (empty) frontier
        row = s.get_article(7)
        assert (row.status, row.version, row.attempts, row.errors) == (ARCHIVED, 1, 0, [])
        failure = s.get_failure("https://x/1")
        assert (failure.attempts, failure.resolved) == (2, None)
        assert s.get_run("old").outcome == "finished"
        assert claim(s, 7, "new", now=30).reason == "recheck"  # the migrated row works with the new code


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.sqlite3"
    _v1_file(path)
    broken = (*state_mod.MIGRATIONS, ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(state_mod, "MIGRATIONS", broken)
    monkeypatch.setattr(state_mod, "SCHEMA_VERSION", len(broken))
    with pytest.raises(sqlite3.OperationalError):
        State.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in names and "articles_status_next" not in names


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version = 99").connection.close()
    with pytest.raises(StateError, match="newer"):
        State.open(path)


def test_lookups_use_indexes(st: State) -> None:
    plans = {
        "last_capture": ("SELECT * FROM captures WHERE url = ? ORDER BY fetched_at DESC LIMIT 1", ("u",)),
        "find_by_digest": ("SELECT * FROM captures WHERE url = ? AND payload_digest = ?", ("u", "d")),
        "dump": ("SELECT size, mtime FROM dumps WHERE path = ?", ("p",)),
        "known_dump": ("SELECT * FROM dumps WHERE sha256 = ?", ("h",)),
        "article": ("SELECT * FROM articles WHERE article_id = ?", (1,)),
        "due": ("SELECT * FROM articles WHERE status = 'archived' AND next_check <= ?", (1,)),
        "due_failures": (
            "SELECT * FROM failures WHERE resolved IS NULL AND given_up = 0 AND next_retry <= ? ORDER BY next_retry",
            (1,),
        ),
    }
    for name, (sql, params) in plans.items():
        plan = " ".join(str(r[-1]) for r in st._query("EXPLAIN QUERY PLAN " + sql, params))
        assert "SEARCH" in plan and "SCAN" not in plan, (name, plan)


# --- dumps ---


def test_unchanged_dump_is_skipped_without_reading(st: State) -> None:
    assert st.dump_changed("/d/a.md", 100, 1.5)
    st.record_dump("/d/a.md", 100, 1.5, "h1", "read", None, "r1", now=10)
    assert not st.dump_changed("/d/a.md", 100, 1.5)
    assert st.dump_changed("/d/a.md", 101, 1.5)
    assert st.dump_changed("/d/a.md", 100, 2.5)
    assert st.known_dump("h1").path == "/d/a.md"  # touched but same content: no need to parse again
    assert st.known_dump("h2") is None
    st.record_dump("/d/a.md", 100, 2.5, "h1", "read", None, "r2", now=20)
    row = st.get_dump("/d/a.md")
    assert (row.mtime, row.first_seen, row.last_seen, row.run_id) == (2.5, 10, 20, "r2")
    # Failed or skipped dumps are read again even when unchanged (e.g. after raising a size limit).
    st.record_dump("/d/big.md", 10**9, 1.0, "h3", "failed", "too large", "r2", now=20)
    assert st.dump_changed("/d/big.md", 10**9, 1.0)
    assert st.known_dump("h3") is None


def test_transaction_groups_calls_atomically(st: State) -> None:
    with pytest.raises(RuntimeError), st.transaction():
        claim(st, 1, "r1", now=0)
        st.record_dump("/d/1.md", 1, 1.0, "h", "read", None, "r1", now=0)
        raise RuntimeError("killed before the group committed")
    assert st.get_article(1) is None and st.get_dump("/d/1.md") is None
    with st.transaction():
        claim(st, 1, "r1", now=0)
        with pytest.raises(sqlite3.IntegrityError):  # one inner call fails: only it is undone
            st.add_capture(CaptureRow(None, "2026-01-01T00:00:00Z"))  # type: ignore[arg-type]
        st.record_dump("/d/1.md", 1, 1.0, "h", "read", None, "r1", now=0)
    assert st.get_article(1).status == CLAIMED and not st.dump_changed("/d/1.md", 1, 1.0)
    assert st.count_captures() == 0


def test_a_failed_write_rolls_back_and_the_state_stays_usable(st: State) -> None:
    with pytest.raises(RuntimeError), st._tx() as c:
        c.execute("INSERT INTO runs (run_id) VALUES ('half')")
        raise RuntimeError("boom")
    assert st.get_run("half") is None
    st.start_run("whole", now=1)
    assert st.get_run("whole").outcome == "running"


# --- articles ---


def test_claim_lifecycle_across_runs(st: State) -> None:
    assert claim(st, 1, "r1", now=0).reason == "new"
    dup = claim(st, 1, "r1", now=0)
    assert not dup.fetch and dup.duplicate
    row = st.finish_article(1, ARCHIVED, "r1", now=1, recheck_after=DAY)
    assert (row.status, row.version, row.first_archived, row.next_check) == (ARCHIVED, 1, 1, 1 + DAY)

    skip = claim(st, 1, "r2", now=100)
    assert (skip.fetch, skip.reason) == (False, "not_due")
    assert claim(st, 1, "r2", now=100, after=0).reason == "recheck"  # 0 = recheck everything now
    row = st.finish_article(1, ARCHIVED, "r2", now=101, recheck_after=DAY, changed=False)
    assert (row.version, row.first_archived, row.last_checked) == (1, 1, 101)  # unchanged: same version

    assert claim(st, 1, "r3", now=101 + DAY).reason == "recheck"
    assert st.finish_article(1, ARCHIVED, "r3", now=102 + DAY, recheck_after=DAY).version == 2


def test_a_deeper_need_upgrades_a_reference(st: State) -> None:
    claim(st, 5, "r1", now=0, depth=1, via="https://api.dw.com/api/detail/article/4")
    st.finish_article(5, ARCHIVED, "r1", now=0, recheck_after=DAY)
    assert claim(st, 5, "r1", now=0, depth=1).duplicate
    up = claim(st, 5, "r1", now=0, depth=0, via=None)  # now named by a dump: the page is wanted too
    assert (up.fetch, up.reason) == (True, "upgrade")
    assert st.get_article(5).depth == 0
    assert claim(st, 6, "r2", now=0, depth=1).fetch
    st.finish_article(6, ARCHIVED, "r2", now=0, recheck_after=DAY)
    assert claim(st, 6, "r3", now=1, depth=0).reason == "upgrade"


def test_claims_of_a_dead_run_are_resumed(st: State) -> None:
    st.start_run("r1", now=0)
    claim(st, 1, "r1", now=0)
    claim(st, 2, "r1", now=0)
    st.finish_article(2, ARCHIVED, "r1", now=0, recheck_after=DAY)
    # r1 is killed here: it never finishes article 1 nor the run.
    assert st.start_run("r2", now=10) == ["r1"]
    assert st.get_run("r1").outcome == "interrupted"
    assert [a.article_id for a in st.due_retries(now=10, limit=10)] == [1]
    again = claim(st, 1, "r2", now=10)
    assert (again.fetch, again.reason, again.previous.status) == (True, "resume", CLAIMED)
    assert list(st.due_retries(now=10, limit=10)) == []  # its own claims are not orphans
    assert not claim(st, 2, "r2", now=10).fetch
    st.finish_run("r2", now=11, outcome="finished", stats={"item_scraped_count": 1, "start_time": object()})
    run = st.get_run("r2")
    assert (run.finished, run.outcome, run.stats["item_scraped_count"]) == (11, "finished", 1)


def test_failed_article_backs_off_then_gives_up(st: State) -> None:
    claim(st, 3, "r1", now=0)
    row = st.finish_article(3, FAILED, "r1", now=0, recheck_after=DAY, errors=["HTTP 503 page"])
    assert (row.status, row.attempts, row.next_check, row.errors) == (FAILED, 1, 100, ["HTTP 503 page"])
    assert claim(st, 3, "r2", now=50).reason == "backoff"
    assert [a.article_id for a in st.due_retries(now=100, limit=5)] == [3]
    assert claim(st, 3, "r2", now=100).reason == "retry"
    assert st.finish_article(3, FAILED, "r2", now=100, recheck_after=DAY).next_check == 300
    assert claim(st, 3, "r3", now=300).reason == "retry"
    row = st.finish_article(3, FAILED, "r3", now=300, recheck_after=DAY)
    assert (row.status, row.attempts, row.next_check) == (GIVEN_UP, 3, None)
    assert claim(st, 3, "r4", now=10**9).reason == GIVEN_UP


def test_failed_recheck_keeps_the_archived_version(st: State) -> None:
    claim(st, 4, "r1", now=0)
    st.finish_article(4, ARCHIVED, "r1", now=0, recheck_after=DAY)
    claim(st, 4, "r2", now=DAY)
    row = st.finish_article(4, FAILED, "r2", now=DAY, recheck_after=DAY, errors=["timeout"])
    assert (row.status, row.version, row.next_check) == (ARCHIVED, 1, DAY + 100)
    assert [a.article_id for a in st.due_rechecks(now=DAY + 100, limit=5)] == [4]


def test_due_rechecks_pages_through_without_repeats(st: State) -> None:
    for aid in range(1, 1201):
        claim(st, aid, "r1", now=0)
        st.finish_article(aid, ARCHIVED, "r1", now=0, recheck_after=10 if aid % 2 else DAY)
    assert len(list(st.due_rechecks(now=5, limit=None))) == 0
    assert len(list(st.due_rechecks(now=10, limit=250))) == 250
    seen = []
    for row in st.due_rechecks(now=10, limit=None):
        seen.append(row.article_id)
        assert claim(st, row.article_id, "r2", now=10).reason == "recheck"  # claiming while iterating
    assert seen == list(range(1, 1201, 2))
    assert len(list(st.due_rechecks(now=10, limit=None, recheck_after=0))) == 600  # the other half


# --- failures ---


def test_record_failure_backs_off_exponentially_and_keeps_history(st: State) -> None:
    url = "https://static.dw.com/image/1_302.jpg"
    assert st.record_failure(url, 1, "image", "HTTP 500", now=0) == (1, 100)
    assert st.record_failure(url, 1, "image", "HTTP 502", now=100) == (2, 300)
    assert st.due_failures(now=299) == []
    assert [f.url for f in st.due_failures(now=300)] == [url]
    attempts, next_retry = st.record_failure(url, 1, "image", "timeout", now=300)
    assert (attempts, next_retry) == (3, None)
    row = st.get_failure(url)
    assert (row.given_up, row.reason, row.first_failed, row.last_failed) == (True, "timeout", 0, 300)
    assert st.clear_failure(url, now=400)
    assert not st.clear_failure(url, now=401)
    assert st.get_failure(url).resolved == 400
    assert list(st.failures()) == []
    assert [f.url for f in st.failures(include_resolved=True)] == [url]
    assert st.record_failure(url, 1, "image", "HTTP 500", now=500) == (1, 600)  # a new failure starts over
    assert RetryPolicy(base=100, cap=250).delay(3) == 250


# --- captures ---


def test_captures_last_and_by_digest(st: State) -> None:
    url = "https://www.dw.com/zh/x/a-1"
    st.add_capture(CaptureRow(url, "2026-01-01T00:00:00.000000Z", 200, "sha1:A", "<urn:uuid:1>", "w-1.warc.gz",
                              0, 500, '"v1"', "Thu, 01 Jan 2026 00:00:00 GMT", "response", "r1"))  # fmt: skip
    st.add_capture(CaptureRow(url, "2026-01-02T00:00:00.000000Z", 200, "sha1:A", "<urn:uuid:2>", "w-2.warc.gz",
                              0, 300, '"v1"', None, "revisit", "r2"))  # fmt: skip
    st.add_capture(CaptureRow(url, "2026-01-03T00:00:00.000000Z", 503, None, "<urn:uuid:3>", "w-3.warc.gz",
                              0, 100, None, None, "response", "r3"))  # fmt: skip
    assert st.last_capture(url).record_id == "<urn:uuid:3>"
    assert st.last_capture(url, statuses=(200, 304)).record_id == "<urn:uuid:2>"
    original = st.find_by_digest(url, "sha1:A")
    assert (original.record_id, original.warc_file, original.offset, original.length) == (
        "<urn:uuid:1>",
        "w-1.warc.gz",
        0,
        500,
    )
    assert st.find_by_digest(url, "sha1:B") is None
    assert st.last_capture("https://other/") is None
    assert st.count_captures() == 3


# --- Scrapy edge ---


def test_for_crawler_opens_once_and_closes_when_engine_stops(tmp_path: Path) -> None:
    crawler = get_crawler(settings_dict={"ARCHIVER_OUTPUT_DIR": str(tmp_path / "out")})
    s = State.for_crawler(crawler)
    assert State.for_crawler(crawler) is s
    assert s.path == tmp_path / "out" / "state.sqlite3"
    crawler.signals.send_catch_log(signals.engine_stopped)
    assert s.closed
    crawler2 = get_crawler(settings_dict={"ARCHIVER_STATE_PATH": str(tmp_path / "elsewhere.db")})
    with State.for_crawler(crawler2) as s2:
        assert s2.path == tmp_path / "elsewhere.db" and s2.integrity_check() == "ok"


# --- run lock ---


def test_run_lock_names_the_holder(tmp_path: Path) -> None:
    a = State.open(tmp_path / "state.sqlite3")
    b = State.open(tmp_path / "state.sqlite3")
    a.acquire_run_lock("first")
    with pytest.raises(StateLocked) as exc:
        b.acquire_run_lock("second")
    assert exc.value.holder["run_id"] == "first" and exc.value.holder["pid"] == os.getpid()
    assert "in use by run first" in str(exc.value)
    a.close()
    b.acquire_run_lock("second")
    assert json.loads((tmp_path / ".lock").read_text())["run_id"] == "second"
    b.close()


def test_run_lock_is_released_by_kill_9(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from archiver.state.store import State
            s = State.open({str(tmp_path / "state.sqlite3")!r})
            s.acquire_run_lock("doomed")
            print("locked", flush=True)
            time.sleep(600)
        """)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with State.open(tmp_path / "state.sqlite3") as s:
            with pytest.raises(StateLocked, match=f"pid {holder.pid}"):
                s.acquire_run_lock("next")
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            s.acquire_run_lock("next")  # the kernel dropped the dead holder's flock
            assert s.locked
    finally:
        holder.kill()
        holder.wait()


# --- crash safety ---

WRITER = """
import sys
from archiver.state.store import ARCHIVED, CaptureRow, State
s = State.open(sys.argv[1])
s.start_run("crashy", 0)
i = 0
while True:
    i += 1
    s.claim_article(i, kind="article", page_url=f"p{i}", api_url=f"a{i}", run_id="crashy", now=i, recheck_after=60)
    s.add_capture(CaptureRow(f"p{i}", f"2026-01-01T00:00:{i % 60:02d}Z", 200, f"sha1:{i}", f"<urn:{i}>", "w.warc.gz"))
    s.finish_article(i, ARCHIVED, "crashy", now=i, recheck_after=60)
    s.record_dump(f"/d/{i}.md", i, float(i), f"h{i}", "read", None, "crashy", now=i)
    print(i, flush=True)
"""


@pytest.mark.parametrize("kill_after", [1, 150, 400])
def test_kill_9_loses_no_committed_write(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "state.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        last = 0
        while last < kill_after:
            last = int(writer.stdout.readline())
        writer.send_signal(signal.SIGKILL)  # mid-loop: probably inside a transaction
        writer.wait(timeout=30)
    finally:
        writer.kill()
        writer.wait()
    with State.open(path) as s:
        assert s.integrity_check() == "ok"
        row = s.get_article(last)
        assert (row.status, row.version) == (ARCHIVED, 1)  # every reported write survived
        assert s.last_capture(f"p{last}").record_id == f"<urn:{last}>"
        assert not s.dump_changed(f"/d/{last}.md", last, float(last))
        n = s.count_articles()
        assert n >= last
        # The next run redoes what was in flight and nothing else.
        assert s.start_run("next", now=10**6) == ["crashy"]
        orphans = [a.article_id for a in s.due_retries(now=0, limit=10)]
        assert orphans in ([], [n])  # at most the one in flight (the writer may have gone past `last`)
        assert s.count_articles(ARCHIVED) + len(orphans) == n


def test_capture_index_serves_the_warc_writer_across_runs(tmp_path: Path) -> None:
    from archiver.warc.dedupe import CaptureIndex, CaptureRef, as_prior
    from archiver.warc.extension import load_index_factory

    settings = {
        "ARCHIVER_OUTPUT_DIR": str(tmp_path),
        "ARCHIVER_WARC_CAPTURE_INDEX": "archiver.state.store:capture_index",
    }
    url = "https://api.dw.com/api/detail/article/1"
    first = get_crawler(settings_dict=settings)
    index = load_index_factory(first.settings["ARCHIVER_WARC_CAPTURE_INDEX"])(first)
    assert isinstance(index, CaptureIndex)
    State.for_crawler(first).start_run("r1", now=0)
    ref = CaptureRef(url, "<urn:uuid:1>", "2026-01-01T00:00:00.000000Z", "sha1:AAA", "w-1.warc.gz", 10, 900, 200)
    index.add_capture(ref)
    first.signals.send_catch_log(signals.engine_stopped)

    second = get_crawler(settings_dict=settings)  # a later run: a new process, the same state file
    index = load_index_factory(second.settings["ARCHIVER_WARC_CAPTURE_INDEX"])(second)
    prior = as_prior(index.find_by_digest(url, "sha1:AAA"))
    assert (prior.record_id, prior.url, prior.fetched_at) == ("<urn:uuid:1>", url, ref.fetched_at)
    assert as_prior(index.last_capture(url)).record_id == "<urn:uuid:1>"
    assert index.find_by_digest(url, "sha1:BBB") is None
    row = State.for_crawler(second).last_capture(url)
    assert (row.run_id, row.warc_file, row.offset, row.length, row.record_type) == (
        "r1",
        "w-1.warc.gz",
        10,
        900,
        "response",
    )
    second.signals.send_catch_log(signals.engine_stopped)


BULK_WRITER = """
import sys, time
from archiver.state.store import State
s = State.open(sys.argv[1])
for batch in range(1, 4):
    with s._tx() as c:
        for i in range(20_000):
            c.execute("INSERT INTO captures (url, fetched_at, run_id) VALUES (?, 'x', ?)", (f"u{i}", str(batch)))
        print("written", batch, flush=True)
        if batch == 3:
            time.sleep(600)  # killed here: batch 3 is written (some of it spilled to the WAL) but not committed
"""


def test_kill_9_inside_a_transaction_keeps_it_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", BULK_WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        while writer.stdout.readline().split() != ["written", "3"]:
            pass
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
        writer.wait()
    with State.open(path) as s:
        assert s.integrity_check() == "ok"
        counts = dict(s._query("SELECT run_id, count(*) FROM captures GROUP BY run_id"))
        assert counts == {"1": 20_000, "2": 20_000}


def test_jobs_are_the_frontier_of_a_run(tmp_path: Path) -> None:
    """Jobs stay until their article is archived: what a killed run held is there for the next."""
    from archiver.items.model import FeedRef

    with State.open(tmp_path / "state.sqlite3") as s:
        s.put_job(3, '{"article_id":3,"feed":[]}', "r1")
        s.put_job(1, '{"article_id":1,"feed":[]}', "r1")
        s.put_job(2, '{"article_id":2,"feed":[]}', "r0")
        assert list(s.run_jobs("r1")) == ['{"article_id":1,"feed":[]}', '{"article_id":3,"feed":[]}']
        assert s.has_job(1, "r1") and not s.has_job(2, "r1")
        s.add_job_feed(1, FeedRef(file="a.md", feed_time=None, title="标题", link="https://www.dw.com/zh/x/a-1"))
        assert '"title":"标题"' in s.get_job(1)
        s.put_job(2, None, "r1")  # taken over by r1, JSON kept
        assert s.get_job(2) == '{"article_id":2,"feed":[]}' and s.has_job(2, "r1")
        s.delete_job(3)
        assert s.count_jobs() == 2
