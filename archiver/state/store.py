"""The memory of periodic crawls: dumps read, articles archived, captures, failures and runs, in SQLite.

One `State` per output folder. Pure Python (sqlite3) except `State.for_crawler`, the Scrapy edge (the crawler's
state is its `StateExtension`'s, archiver/state/extension.py). Every write is a transaction (`transaction()` groups
several); every lookup is an indexed query, so memory does not grow with history. WAL with `synchronous=NORMAL`
survives `kill -9` of the process with every committed transaction kept (the WAL is in the OS page cache); only an
OS crash or power loss may roll back the last commits, and rolled-back work is fetched again, never lost.
`ARCHIVER_STATE_SYNCHRONOUS=FULL` also keeps those (one fsync per commit).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from archiver import config
from archiver.run.schedule import SCHEDULED_KINDS, RecheckPolicy
from archiver.state.errors import REBUILD_HINT, StateDamaged, StateError
from archiver.state.lock import RunLock
from archiver.state.migrations import migrate

logger = logging.getLogger(__name__)

# Article statuses.
CLAIMED = "claimed"  # being fetched by `last_run_id`; from any other run it counts as not done
ARCHIVED = "archived"
FAILED = "failed"  # waits for its retry time (`next_check`)
GIVEN_UP = "given_up"  # failed `max_attempts` times and was never archived

# Dump outcomes after which an unchanged dump is not read again (its articles are claimed).
DONE_DUMPS = ("read", "duplicate")

# Why `claim_article` said fetch or skip.
NEW, RECHECK, RETRY, RESUME, UPGRADE = "new", "recheck", "retry", "resume", "upgrade"
DUPLICATE, NOT_DUE, BACKOFF = "duplicate", "not_due", "backoff"

_PAGE = 500  # rows per query when iterating


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: `base * 2**(attempts-1)` seconds, capped, up to `max_attempts` tries."""

    max_attempts: int = 5
    base: float = 3600.0
    cap: float = 7 * 86400.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure."""
        return min(self.base * 2 ** max(attempts - 1, 0), self.cap)


@dataclass(slots=True)
class DumpRow:
    """A feed dump as last read."""

    path: str
    size: int
    mtime: float
    sha256: str | None
    outcome: str | None
    reason: str | None
    first_seen: float | None
    last_seen: float | None
    run_id: str | None


@dataclass(slots=True)
class ArticleRow:
    """An article (or cited article) and where it stands."""

    article_id: int
    kind: str | None
    page_url: str | None
    api_url: str | None
    status: str
    first_archived: float | None
    last_checked: float | None
    next_check: float | None
    version: int
    last_run_id: str | None
    depth: int
    via: str | None
    first_seen: float | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    published: float | None = None  # publication time (epoch), when an item gave it
    tier: int | None = None  # age step (0 = youngest) of the schedule that set `next_check`
    last_change: float | None = None  # when a recheck last found the article edited, restored or removed
    last_change_kind: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to `claim_article`: fetch or skip, and why (`new`, `recheck`, `retry`, `resume`, ...)."""

    article_id: int
    fetch: bool
    reason: str
    previous: ArticleRow | None = None

    @property
    def duplicate(self) -> bool:
        """Already claimed in this run."""
        return self.reason == DUPLICATE


@dataclass(slots=True)
class CaptureRow:
    """One WARC record of an exchange (response, revisit, ...) and where it is."""

    url: str
    fetched_at: str  # the record's WARC-Date
    status: int | None = None
    payload_digest: str | None = None
    record_id: str | None = None
    warc_file: str | None = None
    offset: int | None = None
    length: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    record_type: str | None = "response"
    run_id: str | None = None

    @classmethod
    def from_ref(cls, ref: Any, run_id: str | None = None) -> CaptureRow:
        """The row of a written record (a warc CaptureRef or a CaptureRow); `run_id` when it names none."""
        return cls(
            url=ref.url,
            fetched_at=ref.fetched_at,
            status=ref.status,
            payload_digest=ref.payload_digest,
            record_id=ref.record_id,
            warc_file=ref.warc_file,
            offset=ref.offset,
            length=ref.length,
            etag=getattr(ref, "etag", None),
            last_modified=getattr(ref, "last_modified", None),
            record_type=getattr(ref, "record_type", None) or "response",
            run_id=getattr(ref, "run_id", None) or run_id,
        )


@dataclass(slots=True)
class FailureRow:
    """A URL that failed, with its retry schedule; `resolved` is set once it succeeded."""

    url: str
    article_id: int | None
    role: str | None
    reason: str | None
    attempts: int
    first_failed: float | None
    last_failed: float | None
    next_retry: float | None
    given_up: bool
    resolved: float | None


@dataclass(slots=True)
class RunRow:
    """One run on this output folder."""

    run_id: str
    started: float | None
    finished: float | None
    outcome: str | None
    stats: dict[str, Any] | None
    pid: int | None
    host: str | None


@dataclass(slots=True)
class ChangeRow:
    """One version (or finding) in an article's history: kind, changed fields, digests, captures."""

    id: int
    article_id: int
    version: int
    at: float
    kind: str
    fields: list[str]
    observed: str
    digests: dict[str, str]
    captures: list[dict[str, Any]]
    moved_to: str | None
    url: str | None
    title: str | None
    run_id: str | None


_CHANGE_COLS = "id, article_id, version, at, kind, fields, observed, digests, captures, moved_to, url, title, run_id"


def _change(row: Sequence[Any]) -> ChangeRow:
    r = list(row)
    for i, empty in ((5, "[]"), (7, "{}"), (8, "[]")):
        r[i] = json.loads(r[i] or empty)
    return ChangeRow(*r)


class Retry(NamedTuple):
    """What `record_failure` decided: attempts so far, and when to retry (None = given up)."""

    attempts: int
    next_retry: float | None


_ARTICLE_COLS = (
    "article_id, kind, page_url, api_url, status, first_archived, last_checked, next_check, version, "
    "last_run_id, depth, via, first_seen, attempts, errors, published, tier, last_change, last_change_kind"
)
_ERRORS = 14  # index of `errors` in _ARTICLE_COLS
_CAPTURE_COLS = ", ".join(f'"{f.name}"' if f.name == "offset" else f.name for f in fields(CaptureRow))
_CAPTURE_FIELDS = tuple(f.name for f in fields(CaptureRow))
_INSERT_CAPTURE = f"INSERT INTO captures ({_CAPTURE_COLS}) VALUES ({', '.join('?' * len(_CAPTURE_FIELDS))})"
_FAILURE_COLS = ", ".join(f.name for f in fields(FailureRow))
_DUMP_COLS = ", ".join(f.name for f in fields(DumpRow))


def _article(row: Sequence[Any] | None) -> ArticleRow | None:
    if row is None:
        return None
    errors = row[_ERRORS]
    return ArticleRow(*row[:_ERRORS], json.loads(errors) if errors else [], *row[_ERRORS + 1 :])


class State:
    """The state of one output folder: open with `State.open(path)` or `State.for_crawler(crawler)`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        lock_path: Path,
        retry: RetryPolicy,
        recheck: RecheckPolicy | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.lock_path = lock_path
        self.retry = retry
        self.recheck = recheck or RecheckPolicy()  # when a finished article is checked again
        self.run_id: str | None = None  # the run started here; its own claims are not orphans
        self._mutex = threading.RLock()
        self.run_lock = RunLock(lock_path)
        self._depth = 0  # nesting of `_tx`: inner ones are savepoints

    # --- opening and closing ---

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        lock_path: str | os.PathLike[str] | None = None,
        synchronous: str = "NORMAL",
        retry: RetryPolicy | None = None,
        recheck: RecheckPolicy | None = None,
        busy_timeout: float = 30.0,
    ) -> State:
        """Open (create, migrate) the state file; the run lock defaults to `.lock` beside it."""
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            _check_integrity(conn, path)
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise StateError(f"{path}: cannot switch to WAL journal mode")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            migrate(conn, path)
        except BaseException:
            conn.close()
            raise
        lock = Path(lock_path) if lock_path is not None else path.parent / ".lock"
        return cls(conn, path, lock, retry or RetryPolicy(), recheck)

    @classmethod
    def for_crawler(cls, crawler: Any) -> State:
        """The crawler's state: the one its StateExtension opened (found with `crawler.get_extension`)."""
        from archiver.state.extension import StateExtension

        ext = crawler.get_extension(StateExtension)
        if ext is None:
            from scrapy.exceptions import NotConfigured

            raise NotConfigured("the state needs archiver.state.extension.StateExtension in EXTENSIONS")
        return ext.state

    @classmethod
    def from_settings(cls, settings: Any) -> State:
        """Open the state file that a crawl's settings name (`ARCHIVER_STATE_PATH`, else `<output>/state.sqlite3`)."""
        out = config.output_dir(settings)
        path = config.state_path(settings)
        earlier = earlier_runs(out)
        if earlier and (not path.exists() or path.stat().st_size == 0):
            raise StateDamaged(
                f"state file {path} is {'empty' if path.exists() else 'missing'} but {out} holds earlier runs "
                f"({earlier}): a new state would fetch and write the archive again; rebuild it with "
                f"`{REBUILD_HINT.format(out=out)}`"
            )
        return cls.open(
            path,
            lock_path=out / ".lock",
            synchronous=str(config.get(settings, "ARCHIVER_STATE_SYNCHRONOUS")),
            retry=RetryPolicy(
                max_attempts=int(config.get(settings, "ARCHIVER_FAILURE_MAX_ATTEMPTS")),
                base=float(config.get(settings, "ARCHIVER_FAILURE_BACKOFF")),
                cap=float(config.get(settings, "ARCHIVER_FAILURE_BACKOFF_MAX")),
            ),
            recheck=config.recheck_policy(settings),
        )

    @property
    def closed(self) -> bool:
        """True once `close()` ran."""
        return self._conn is None

    def close(self) -> None:
        """Close the database and release the run lock (if held); safe to call twice."""
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]
            self.release_run_lock()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), or a savepoint inside `transaction()`."""
        with self._mutex:
            conn = self._conn
            if conn is None:
                raise StateError(f"{self.path}: state is closed")
            self._depth += 1
            begin, commit, undo = (
                ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                if self._depth == 1
                else (f"SAVEPOINT s{self._depth}", f"RELEASE s{self._depth}", f"ROLLBACK TO s{self._depth}")
            )
            try:
                conn.execute(begin)
                try:
                    yield conn
                    conn.execute(commit)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute(undo)
                        if self._depth > 1:
                            conn.execute(commit)  # a savepoint rolled back is still to be released
                    raise
            finally:
                self._depth -= 1

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Group several calls into one atomic commit, e.g. a dump's claims with its `record_dump`."""
        return self._tx()

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._mutex:
            if self._conn is None:
                raise StateError(f"{self.path}: state is closed")
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def schema_version(self) -> int:
        """The file's `PRAGMA user_version`."""
        return int(self._one("PRAGMA user_version")[0])

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` answer (`ok` when sound)."""
        return str(self._one("PRAGMA integrity_check")[0])

    # --- run lock ---

    def acquire_run_lock(self, run_id: str) -> None:
        """Hold the output folder for this process, or raise `StateLocked` naming the holder."""
        self.run_lock.acquire(run_id)

    def release_run_lock(self) -> None:
        """Let go of the run lock."""
        self.run_lock.release()

    @property
    def locked(self) -> bool:
        """True while this State holds the run lock."""
        return self.run_lock.held

    # --- runs ---

    def start_run(self, run_id: str, now: float) -> list[str]:
        """Record the run as running; earlier runs still marked running died: mark and return them."""
        with self._tx() as c:
            dead = [
                r[0] for r in c.execute("SELECT run_id FROM runs WHERE outcome = 'running' AND run_id != ?", (run_id,))
            ]
            c.execute("UPDATE runs SET outcome = 'interrupted' WHERE outcome = 'running' AND run_id != ?", (run_id,))
            c.execute(
                "INSERT INTO runs (run_id, started, outcome, pid, host) VALUES (?, ?, 'running', ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET outcome = 'running', finished = NULL",
                (run_id, now, os.getpid(), socket.gethostname()),
            )
        self.run_id = run_id
        return dead

    def finish_run(self, run_id: str, now: float, outcome: str, stats: dict[str, Any] | None = None) -> None:
        """Record how the run ended, with its stats (JSON; odd values as strings)."""
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET finished = ?, outcome = ?, stats = ? WHERE run_id = ?",
                (now, outcome, json.dumps(stats or {}, default=str, sort_keys=True), run_id),
            )

    def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""
        row = self._one(
            "SELECT run_id, started, finished, outcome, stats, pid, host FROM runs WHERE run_id = ?", (run_id,)
        )
        if row is None:
            return None
        return RunRow(row[0], row[1], row[2], row[3], json.loads(row[4]) if row[4] else None, row[5], row[6])

    # --- dumps ---

    def dump_changed(self, path: str, size: int, mtime: float, *, done: Sequence[str] = DONE_DUMPS) -> bool:
        """True unless the dump was recorded with this size and mtime and a `done` outcome (no file read).

        Dumps recorded as failed or skipped (e.g. too large, over a limit) are read again.
        """
        row = self._one("SELECT size, mtime, outcome FROM dumps WHERE path = ?", (str(path),))
        return row is None or row[0] != size or row[1] != mtime or row[2] not in done

    def get_dump(self, path: str) -> DumpRow | None:
        """The dump as last recorded, or None."""
        row = self._one(f"SELECT {_DUMP_COLS} FROM dumps WHERE path = ?", (str(path),))
        return DumpRow(*row) if row else None

    def known_dump(self, sha256: str, *, done: Sequence[str] = DONE_DUMPS) -> DumpRow | None:
        """A dump (any path) with this content hash and a `done` outcome, or None: a touched file need no parse."""
        marks = ", ".join("?" * len(done))
        row = self._one(
            f"SELECT {_DUMP_COLS} FROM dumps WHERE sha256 = ? AND outcome IN ({marks}) LIMIT 1", (sha256, *done)
        )
        return DumpRow(*row) if row else None

    def record_dump(
        self,
        path: str,
        size: int,
        mtime: float,
        sha256: str | None,
        outcome: str,
        reason: str | None,
        run_id: str | None,
        now: float | None = None,
    ) -> None:
        """Record a dump as read; call it after every article of the dump was claimed."""
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(
                "INSERT INTO dumps (path, size, mtime, sha256, outcome, reason, first_seen, last_seen, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
                "mtime = excluded.mtime, sha256 = excluded.sha256, outcome = excluded.outcome, "
                "reason = excluded.reason, last_seen = excluded.last_seen, run_id = excluded.run_id",
                (str(path), size, mtime, sha256, outcome, reason, now, now, run_id),
            )

    # --- articles ---

    def get_article(self, article_id: int) -> ArticleRow | None:
        """One article, or None."""
        return _article(self._one(f"SELECT {_ARTICLE_COLS} FROM articles WHERE article_id = ?", (int(article_id),)))

    def claim_article(
        self,
        article_id: int,
        *,
        kind: str | None = None,
        page_url: str | None = None,
        api_url: str | None = None,
        run_id: str,
        now: float,
        recheck_after: float | None = None,
        depth: int = 0,
        via: str | int | None = None,
    ) -> Claim:
        """Decide whether this run fetches the article, and if so mark it claimed by `run_id`.

        Fetch: new, due for recheck (its `next_check` has come, or with `recheck_after` (a fixed interval) it was
        last checked that long ago), failed and due for retry, claimed by a run that never finished it
        (`resume`), or wanted at a smaller depth than it was archived at (`upgrade`). Skip: claimed in
        this run already (`duplicate`), archived and not due, failed and waiting, or given up.
        """
        aid = int(article_id)
        with self._tx() as c:
            prev = _article(c.execute(f"SELECT {_ARTICLE_COLS} FROM articles WHERE article_id = ?", (aid,)).fetchone())
            if prev is None:
                c.execute(
                    "INSERT INTO articles (article_id, kind, page_url, api_url, status, last_run_id, depth, via, "
                    "first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (aid, kind, page_url, api_url, CLAIMED, run_id, depth, via, now),
                )
                return Claim(aid, True, NEW)
            reason = _claim_reason(prev, run_id, now, recheck_after, depth)
            if reason in (DUPLICATE, NOT_DUE, BACKOFF, GIVEN_UP):
                return Claim(aid, False, reason, prev)
            c.execute(
                "UPDATE articles SET status = ?, last_run_id = ?, kind = coalesce(?, kind), "
                "page_url = coalesce(?, page_url), api_url = coalesce(?, api_url), "
                "via = CASE WHEN ? < depth THEN ? ELSE via END, depth = min(depth, ?) WHERE article_id = ?",
                (CLAIMED, run_id, kind, page_url, api_url, depth, via, depth, aid),
            )
            return Claim(aid, True, reason, prev)

    def finish_article(
        self,
        article_id: int,
        status: str,
        run_id: str,
        now: float,
        recheck_after: float | None = None,
        errors: Iterable[str] = (),
        *,
        changed: bool = True,
        published: float | None = None,
        change_kind: str | None = None,
        retry_now: bool = False,
    ) -> ArticleRow:
        """Record the outcome of a claimed article: `archived` (a new version if `changed`) or `failed`.

        The next check comes from the state's `recheck` policy (age from `published`, else from the first
        capture; `change_kind` `edited`/`restored`/`removed` is what this check found), or `recheck_after`
        seconds when given. A failed article is retried with backoff until `max_attempts`, then given up;
        one archived before keeps its archived status and falls back to its normal recheck time instead. With
        `retry_now` (the failure was local, e.g. a WARC write error) the next run retries it and no attempt is
        counted.
        """
        if status not in (ARCHIVED, FAILED):
            raise ValueError(f"status must be {ARCHIVED!r} or {FAILED!r}, not {status!r}")
        aid = int(article_id)
        err_list = list(errors)
        errs = json.dumps(err_list, ensure_ascii=False) if err_list else None
        with self._tx() as c:
            row = c.execute(
                "SELECT first_archived, attempts, version, published, last_change, last_change_kind FROM articles "
                "WHERE article_id = ?",
                (aid,),
            ).fetchone()
            if row is None:
                raise KeyError(f"article {aid} was never claimed")
            first_archived, attempts, version, known_published, last_change, last_kind = row
            published = known_published if published is None else published
            if change_kind in SCHEDULED_KINDS:
                last_change, last_kind = now, change_kind
            policy = self.recheck if recheck_after is None else RecheckPolicy(self.recheck.schedule, recheck_after)
            plan = policy.decide(
                published, first_archived if first_archived is not None else now, now, last_kind, last_change
            )
            if status == ARCHIVED:
                c.execute(
                    "UPDATE articles SET status = ?, version = ?, first_archived = coalesce(first_archived, ?), "
                    "last_checked = ?, next_check = ?, tier = ?, published = ?, last_change = ?, "
                    "last_change_kind = ?, attempts = 0, errors = ?, last_run_id = ? WHERE article_id = ?",
                    (
                        ARCHIVED,
                        version + 1 if changed or version == 0 else version,
                        now,
                        now,
                        plan.next_check,
                        plan.tier,
                        published,
                        last_change,
                        last_kind,
                        errs,
                        run_id,
                        aid,
                    ),
                )
            elif retry_now:
                c.execute(
                    "UPDATE articles SET status = ?, next_check = ?, errors = ?, last_run_id = ? WHERE article_id = ?",
                    (ARCHIVED if first_archived is not None else FAILED, now, errs, run_id, aid),
                )
            else:
                attempts += 1
                if first_archived is not None:  # a failed recheck: keep the archived version
                    new_status = ARCHIVED
                    wait = self.retry.delay(attempts) if attempts < self.retry.max_attempts else plan.interval
                    next_check: float | None = now + wait
                    if attempts >= self.retry.max_attempts:
                        attempts = 0
                elif attempts >= self.retry.max_attempts:
                    new_status, next_check = GIVEN_UP, None
                else:
                    new_status, next_check = FAILED, now + self.retry.delay(attempts)
                c.execute(
                    "UPDATE articles SET status = ?, attempts = ?, next_check = ?, tier = ?, published = ?, "
                    "errors = ?, last_run_id = ? WHERE article_id = ?",
                    (new_status, attempts, next_check, plan.tier, published, errs, run_id, aid),
                )
            return _article(c.execute(f"SELECT {_ARTICLE_COLS} FROM articles WHERE article_id = ?", (aid,)).fetchone())  # type: ignore[return-value]

    def due_rechecks(
        self, now: float, limit: int | None = None, *, recheck_after: float | None = None
    ) -> Iterator[ArticleRow]:
        """Archived articles whose recheck time has come (or, with `recheck_after`, last checked that long ago),
        most overdue first; index range scans, one page at a time, so the caller may claim while iterating."""
        due = self._keyset("status = 'archived' AND next_check <= :now", "next_check", {"now": now})
        if recheck_after is not None:
            late = self._keyset(_LATE, "last_checked", {"now": now, "cut": now - recheck_after})
            # Each stream in the order of its due time: next_check (it is due by it), or last check + interval.
            due = heapq.merge(
                due, late, key=lambda r: r.next_check if r.next_check is not None and r.next_check <= now
                else r.last_checked + recheck_after,
            )  # fmt: skip
        yield from itertools.islice(due, limit)

    def recheck_candidates(self, now: float, per_tier: int) -> list[ArticleRow]:
        """The `per_tier` most overdue archived articles of each age step (index lookups, one per step)."""
        row = self._one(
            "SELECT tier FROM articles WHERE status = 'archived' AND tier IS NOT NULL ORDER BY tier DESC LIMIT 1"
        )
        top = row[0] if row else None
        rows: list[ArticleRow] = []
        for tier in (*range((top if top is not None else -1) + 1), None):
            cond = "tier IS NULL" if tier is None else "tier = :tier"
            rows += self._articles_sql(
                f"status = 'archived' AND {cond} AND next_check <= :now ORDER BY next_check LIMIT :n",
                {"tier": tier, "now": now, "n": per_tier},
            )
        return rows

    def count_due(self, when: float, *, recheck_after: float | None = None) -> tuple[int, float | None]:
        """How many archived articles are due by `when`, and the earliest due time (index range counts)."""
        n, first = self._one(
            "SELECT count(*), min(next_check) FROM articles WHERE status = 'archived' AND next_check <= ?", (when,)
        )
        if recheck_after is not None:
            more, oldest = self._one(
                f"SELECT count(*), min(last_checked) FROM articles WHERE {_LATE}",
                {"now": when, "cut": when - recheck_after},
            )
            n += more
            if oldest is not None:
                first = min(first if first is not None else float("inf"), oldest + recheck_after)
        return int(n), first

    def count_by_tier(self) -> dict[int | None, int]:
        """Archived articles per age step of their next check (one pass over an index: for reports, not runs)."""
        rows = self._query("SELECT tier, count(*) FROM articles WHERE status = 'archived' GROUP BY tier")
        return {tier: int(n) for tier, n in rows}

    def due_retries(self, now: float, limit: int | None = None, *, run_id: str | None = None) -> Iterator[ArticleRow]:
        """Failed articles whose retry time has come, and claims of other runs never finished (to resume)."""
        where = "(status = 'failed' AND next_check <= :now) OR (status = 'claimed' AND last_run_id IS NOT :run)"
        yield from self._articles_where(where, {"now": now, "run": run_id or self.run_id}, limit)

    def count_unfinished(self, run_id: str) -> int:
        """Articles `run_id` claimed and never finished (their work is left for the next run)."""
        sql = "SELECT count(*) FROM articles WHERE status = ? AND last_run_id = ?"
        return int(self._one(sql, (CLAIMED, run_id))[0])

    def count_articles(self, status: str | None = None) -> int:
        """How many articles (with this status)."""
        if status is None:
            return int(self._one("SELECT count(*) FROM articles")[0])
        return int(self._one("SELECT count(*) FROM articles WHERE status = ?", (status,))[0])

    def _articles_sql(self, tail: str, params: dict[str, Any]) -> list[ArticleRow]:
        return [_article(r) for r in self._query(f"SELECT {_ARTICLE_COLS} FROM articles WHERE {tail}", params)]  # type: ignore[misc]

    def _keyset(self, where: str, key: str, params: dict[str, Any]) -> Iterator[ArticleRow]:
        """Rows matching `where` by (`key`, article id), one page at a time: an index range scan per page."""
        after = ""
        while True:
            rows = self._articles_sql(f"{where}{after} ORDER BY {key}, article_id LIMIT {_PAGE}", params)
            yield from rows
            if len(rows) < _PAGE:
                return
            params = {**params, "k": getattr(rows[-1], key), "id": rows[-1].article_id}
            after = f" AND ({key}, article_id) > (:k, :id)"

    def _articles_where(self, where: str, params: dict[str, Any], limit: int | None) -> Iterator[ArticleRow]:
        """Rows matching `where`, by article id, one page at a time (no cursor kept open across yields)."""
        last, left = -(2**63), limit if limit is not None else -1
        while left != 0:
            page = _PAGE if left < 0 else min(_PAGE, left)
            rows = self._query(
                f"SELECT {_ARTICLE_COLS} FROM articles WHERE article_id > :last AND ({where}) "
                "ORDER BY article_id LIMIT :page",
                {**params, "last": last, "page": page},
            )
            for row in rows:
                yield _article(row)  # type: ignore[misc]
            if len(rows) < page:
                return
            last = rows[-1][0]
            left = left - len(rows) if left > 0 else left

    # --- change history ---

    def record_change(
        self,
        article_id: int,
        kind: str,
        *,
        version: int,
        observed: str,
        at: float | None = None,
        fields: Sequence[str] = (),
        digests: dict[str, str] | None = None,
        captures: Sequence[dict[str, Any]] = (),
        moved_to: str | None = None,
        url: str | None = None,
        title: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Append one version or finding (`new`, `edited`, `removed`, `moved`, `restored`) to the article's history."""
        self._query(
            f"INSERT INTO changes ({_CHANGE_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(article_id),
                version,
                time.time() if at is None else at,
                kind,
                json.dumps(list(fields)) if fields else None,
                observed,
                json.dumps(digests or {}, sort_keys=True),
                json.dumps(list(captures), ensure_ascii=False) if captures else None,
                moved_to,
                url,
                title,
                run_id or self.run_id,
            ),
        )

    def last_change(self, article_id: int) -> ChangeRow | None:
        """The newest history row of the article, or None."""
        row = self._one(
            f"SELECT {_CHANGE_COLS} FROM changes WHERE article_id = ? ORDER BY id DESC LIMIT 1", (int(article_id),)
        )
        return _change(row) if row else None

    def article_history(self, article_id: int) -> list[ChangeRow]:
        """Every history row of the article, oldest first."""
        rows = self._query(f"SELECT {_CHANGE_COLS} FROM changes WHERE article_id = ? ORDER BY id", (int(article_id),))
        return [_change(r) for r in rows]

    def changes(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[str] | None = None,
        article_id: int | None = None,
    ) -> Iterator[ChangeRow]:
        """History rows newest first, filtered by time (`since` <= at < `until`), kinds and article."""
        where, params = ["id < ?"], [2**63 - 1]
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params += list(kinds)
        if article_id is not None:
            where.append("article_id = ?")
            params.append(int(article_id))
        while True:
            rows = self._query(
                f"SELECT {_CHANGE_COLS} FROM changes WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {_PAGE}",
                params,
            )
            yield from (_change(r) for r in rows)
            if len(rows) < _PAGE:
                return
            params[0] = rows[-1][0]

    def count_changes(self) -> int:
        """How many history rows are kept."""
        return int(self._one("SELECT count(*) FROM changes")[0])

    # --- jobs (the frontier) ---

    def put_job(self, article_id: int, job: str | None, run_id: str, now: float | None = None) -> None:
        """Store the job of a claimed article for `run_id`; with `job` None, keep the stored JSON."""
        now = time.time() if now is None else now
        with self._tx() as c:
            if job is None:
                c.execute("UPDATE jobs SET run_id = ? WHERE article_id = ?", (run_id, int(article_id)))
            else:
                c.execute(
                    "INSERT INTO jobs (article_id, job, run_id, queued) VALUES (?, ?, ?, ?) ON CONFLICT (article_id) "
                    "DO UPDATE SET job = excluded.job, run_id = excluded.run_id",
                    (int(article_id), job, run_id, now),
                )

    def get_job(self, article_id: int) -> str | None:
        """The stored JSON of an article's job, or None."""
        row = self._one("SELECT job FROM jobs WHERE article_id = ?", (int(article_id),))
        return row[0] if row else None

    def has_job(self, article_id: int, run_id: str) -> bool:
        """Whether `run_id` holds a job for the article."""
        return (
            self._one("SELECT 1 FROM jobs WHERE article_id = ? AND run_id = ?", (int(article_id), run_id)) is not None
        )

    def add_job_feed(self, article_id: int, feed: Any) -> None:
        """Add one more dump that named the article to its stored job (a FeedRef dataclass)."""
        with self._tx() as c:
            row = c.execute("SELECT job FROM jobs WHERE article_id = ?", (int(article_id),)).fetchone()
            if row is None:
                return
            job = json.loads(row[0])
            job.setdefault("feed", []).append(asdict(feed))
            c.execute(
                "UPDATE jobs SET job = ? WHERE article_id = ?",
                (json.dumps(job, ensure_ascii=False, separators=(",", ":")), int(article_id)),
            )

    def run_jobs(self, run_id: str, *, recheck: bool | None = None) -> Iterator[str]:
        """The JSON of every job `run_id` holds (only rechecks, or only the others), by article id, a page at a time."""
        last = -(2**63)
        which = "" if recheck is None else f"AND json_extract(job, '$.recheck') IS {'' if recheck else 'NOT '}1 "
        while True:
            rows = self._query(
                f"SELECT article_id, job FROM jobs WHERE run_id = ? AND article_id > ? {which}"
                f"ORDER BY article_id LIMIT {_PAGE}",
                (run_id, last),
            )
            for _, job in rows:
                yield job
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    def delete_job(self, article_id: int) -> None:
        """Forget the job of an archived article (one statement: atomic on its own)."""
        self._query("DELETE FROM jobs WHERE article_id = ?", (int(article_id),))

    def count_jobs(self) -> int:
        """How many jobs wait (claimed and not yet archived)."""
        return int(self._one("SELECT count(*) FROM jobs")[0])

    # --- failures ---

    def record_failure(self, url: str, article_id: int | None, role: str | None, reason: str, now: float) -> Retry:
        """Count a failure of `url` and schedule its retry with exponential backoff (None once given up)."""
        with self._tx() as c:
            row = c.execute("SELECT attempts, resolved FROM failures WHERE url = ?", (url,)).fetchone()
            fresh = row is None or row[1] is not None
            attempts = 1 if fresh else row[0] + 1
            given_up = attempts >= self.retry.max_attempts
            next_retry = None if given_up else now + self.retry.delay(attempts)
            c.execute(
                "INSERT INTO failures (url, article_id, role, reason, attempts, first_failed, last_failed, "
                "next_retry, given_up, resolved) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT (url) DO UPDATE SET article_id = coalesce(excluded.article_id, article_id), "
                "role = coalesce(excluded.role, role), reason = excluded.reason, attempts = excluded.attempts, "
                "first_failed = CASE WHEN ? THEN excluded.first_failed ELSE first_failed END, "
                "last_failed = excluded.last_failed, next_retry = excluded.next_retry, "
                "given_up = excluded.given_up, resolved = NULL",
                (url, article_id, role, reason, attempts, now, now, next_retry, int(given_up), int(fresh)),
            )
        return Retry(attempts, next_retry)

    def clear_failure(self, url: str, now: float | None = None) -> bool:
        """Mark the URL's failure resolved (its history stays); False when it had none open."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE failures SET resolved = ?, next_retry = NULL WHERE url = ? AND resolved IS NULL",
                (time.time() if now is None else now, url),
            )
            return cur.rowcount > 0

    def get_failure(self, url: str) -> FailureRow | None:
        """The URL's failure record, or None."""
        row = self._one(f"SELECT {_FAILURE_COLS} FROM failures WHERE url = ?", (url,))
        return _failure(row) if row else None

    def due_failures(self, now: float, limit: int = 1000) -> list[FailureRow]:
        """Open failures (not given up) whose retry time has come, most overdue first."""
        rows = self._query(
            f"SELECT {_FAILURE_COLS} FROM failures WHERE resolved IS NULL AND given_up = 0 AND next_retry <= ? "
            "ORDER BY next_retry LIMIT ?",
            (now, limit),
        )
        return [_failure(r) for r in rows]

    def failures(self, *, include_resolved: bool = False) -> Iterator[FailureRow]:
        """Every failure record (open ones only by default), one page at a time."""
        last = ""
        cond = "" if include_resolved else "AND resolved IS NULL"
        while True:
            rows = self._query(
                f"SELECT {_FAILURE_COLS} FROM failures WHERE url > ? {cond} ORDER BY url LIMIT {_PAGE}", (last,)
            )
            yield from (_failure(r) for r in rows)
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    # --- captures ---

    def add_capture(self, capture: CaptureRow) -> None:
        """Record one written WARC record (response, revisit, ...)."""
        # One statement: atomic on its own (autocommit), or part of an open `transaction()`.
        values = tuple(getattr(capture, name) for name in _CAPTURE_FIELDS)  # astuple() deep-copies each field
        self._query(_INSERT_CAPTURE, values)

    def last_capture(
        self, url: str, *, statuses: Iterable[int] | None = None, record_type: str | None = None
    ) -> CaptureRow | None:
        """The latest capture of `url` (optionally only with one of `statuses`, of one record type), or None."""
        sql = f"SELECT {_CAPTURE_COLS} FROM captures WHERE url = ?"
        params: list[Any] = [url]
        if record_type is not None:
            sql += " AND record_type = ?"
            params.append(record_type)
        if statuses is not None:
            st = list(statuses)
            sql += f" AND status IN ({', '.join('?' * len(st))})"
            params += st
        row = self._one(sql + " ORDER BY fetched_at DESC, id DESC LIMIT 1", params)
        return CaptureRow(*row) if row else None

    def find_by_digest(self, url: str, payload_digest: str) -> CaptureRow | None:
        """The first full response of `url` with this payload digest (in any run and WARC file), or None."""
        row = self._one(
            f"SELECT {_CAPTURE_COLS} FROM captures WHERE url = ? AND payload_digest = ? "
            "AND record_type = 'response' ORDER BY fetched_at, id LIMIT 1",
            (url, payload_digest),
        )
        return CaptureRow(*row) if row else None

    def count_captures(self) -> int:
        """How many captures are recorded."""
        return int(self._one("SELECT count(*) FROM captures")[0])

    def forget_captures(self, warc_file: str, from_offset: int = 0, now: float | None = None) -> list[int]:
        """Drop the captures of `warc_file` from `from_offset` on (their records are gone) and make every article
        that has one of them due at once, so the next run fetches it again; the ids of those articles."""
        with self._tx() as c:
            urls = [
                r[0]
                for r in c.execute(
                    'SELECT DISTINCT url FROM captures WHERE warc_file = ? AND "offset" >= ?', (warc_file, from_offset)
                )
            ]
            c.execute('DELETE FROM captures WHERE warc_file = ? AND "offset" >= ?', (warc_file, from_offset))
            ids: set[int] = set()
            by_url = "SELECT article_id FROM articles WHERE page_url = ? OR api_url = ?"
            for url in urls:
                ids.update(r[0] for r in c.execute(by_url, (url, url)))
            for aid in sorted(ids):
                c.execute(
                    "UPDATE articles SET next_check = ?, status = CASE WHEN status = 'given_up' THEN 'failed' "
                    "ELSE status END WHERE article_id = ?",
                    (now if now is not None else time.time(), aid),
                )
        return sorted(ids)


# Archived articles last checked before :cut and not already due by next_check (the second half of a fixed interval).
_LATE = "status = 'archived' AND last_checked <= :cut AND (next_check > :now OR next_check IS NULL)"


def _claim_reason(prev: ArticleRow, run_id: str, now: float, recheck_after: float | None, depth: int) -> str:
    """Why an existing article is (or is not) fetched by this claim."""
    if prev.last_run_id == run_id:
        return UPGRADE if depth < prev.depth and prev.status != GIVEN_UP else DUPLICATE
    if prev.status == CLAIMED:
        return RESUME
    if prev.status == ARCHIVED:
        due = (prev.next_check is not None and prev.next_check <= now) or (
            recheck_after is not None and prev.last_checked is not None and prev.last_checked + recheck_after <= now
        )
        if due:
            return RECHECK
        return UPGRADE if depth < prev.depth else NOT_DUE
    if prev.status == FAILED:
        return RETRY if prev.next_check is None or prev.next_check <= now else BACKOFF
    return GIVEN_UP


def _failure(row: Sequence[Any]) -> FailureRow:
    r = list(row)
    r[8] = bool(r[8])
    return FailureRow(*r)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Raise `StateDamaged`, naming the fix, unless SQLite's `quick_check` finds the file sound."""
    try:
        verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        verdict = str(exc)
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    if verdict != "ok":
        verdict = "; ".join(line.strip("* ") for line in str(verdict).splitlines() if line.strip("* "))[:200]
        raise StateDamaged(
            f"state file {path} is damaged ({verdict}): rebuild it from the output folder with "
            f"`{REBUILD_HINT.format(out=path.parent)}`"
        )


def earlier_runs(out: Path) -> str | None:
    """What in an output folder shows that runs wrote to it (WARC files, items, reports), or None."""
    found = [
        f"{sub}/{pattern}"
        for sub, pattern in (("warc", "*.warc.gz*"), ("items", "*.jsonl"), ("reports", "*.json"))
        if (out / sub).is_dir() and next((out / sub).glob(pattern), None) is not None
    ]
    return ", ".join(found) or None
