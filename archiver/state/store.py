"""The memory of periodic crawls: dumps read, articles archived, captures, failures and runs, in SQLite.

One `State` per output folder. Pure Python (sqlite3) except `State.for_crawler` and `StateExtension`,
the Scrapy edges. Every write is a transaction (`transaction()` groups several); every lookup is an
indexed query, so memory does not grow with history. WAL with `synchronous=NORMAL` survives `kill -9`
of the process with every committed transaction kept (the WAL is in the OS page cache); only an OS crash
or power loss may roll back the last commits, and rolled-back work is fetched again, never lost.
`ARCHIVER_STATE_SYNCHRONOUS=FULL` also keeps those (one fsync per commit).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from archiver import config
from archiver import signals as archiver_signals

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

# Each migration is a list of statements, applied in one transaction; user_version = its 1-based index.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the tables
        """CREATE TABLE dumps (
            path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT,
            outcome TEXT, reason TEXT, first_seen REAL, last_seen REAL, run_id TEXT)""",
        """CREATE TABLE articles (
            article_id INTEGER PRIMARY KEY, kind TEXT, page_url TEXT, api_url TEXT, status TEXT NOT NULL,
            first_archived REAL, last_checked REAL, next_check REAL, version INTEGER NOT NULL DEFAULT 0,
            last_run_id TEXT, depth INTEGER NOT NULL DEFAULT 0, via TEXT)""",
        """CREATE TABLE captures (
            id INTEGER PRIMARY KEY, url TEXT NOT NULL, fetched_at TEXT NOT NULL, status INTEGER,
            payload_digest TEXT, record_id TEXT, warc_file TEXT, "offset" INTEGER, length INTEGER,
            etag TEXT, last_modified TEXT, record_type TEXT, run_id TEXT)""",
        "CREATE INDEX captures_url_time ON captures (url, fetched_at)",
        "CREATE INDEX captures_url_digest ON captures (url, payload_digest)",
        """CREATE TABLE failures (
            url TEXT PRIMARY KEY, article_id INTEGER, role TEXT, reason TEXT, attempts INTEGER NOT NULL,
            first_failed REAL, last_failed REAL, next_retry REAL, given_up INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, started REAL, finished REAL, outcome TEXT, stats TEXT)""",
    ),
    (  # 2: retry bookkeeping, failure history, run holders, indexes for the due queries
        "ALTER TABLE articles ADD COLUMN first_seen REAL",
        "ALTER TABLE articles ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE articles ADD COLUMN errors TEXT",
        "ALTER TABLE failures ADD COLUMN resolved REAL",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "CREATE INDEX articles_status_next ON articles (status, next_check)",
        "CREATE INDEX articles_status_checked ON articles (status, last_checked)",
        "CREATE INDEX failures_article ON failures (article_id)",
        "CREATE INDEX failures_due ON failures (next_retry) WHERE resolved IS NULL AND given_up = 0",
        "CREATE INDEX dumps_sha256 ON dumps (sha256)",
    ),
    (  # 3: the frontier: a job per article claimed and not yet archived (JSON of archiver.run.jobs.ArticleJob)
        """CREATE TABLE jobs (
            article_id INTEGER PRIMARY KEY, job TEXT NOT NULL, run_id TEXT, queued REAL)""",
        "CREATE INDEX jobs_run ON jobs (run_id, article_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_PAGE = 500  # rows per query when iterating


class StateError(Exception):
    """The state file cannot be used (e.g. written by a newer archiver)."""


REBUILD_HINT = "scrapy state-rebuild -s ARCHIVER_OUTPUT_DIR={out}"


class StateDamaged(StateError):
    """The state file fails SQLite's integrity check, or is new beside an output folder that holds earlier runs."""


class StateLocked(StateError):
    """Another live process holds the output folder's run lock."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


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


class Retry(NamedTuple):
    """What `record_failure` decided: attempts so far, and when to retry (None = given up)."""

    attempts: int
    next_retry: float | None


_ARTICLE_COLS = (
    "article_id, kind, page_url, api_url, status, first_archived, last_checked, next_check, version, "
    "last_run_id, depth, via, first_seen, attempts, errors"
)
_CAPTURE_COLS = ", ".join(f'"{f.name}"' if f.name == "offset" else f.name for f in fields(CaptureRow))
_CAPTURE_FIELDS = tuple(f.name for f in fields(CaptureRow))
_INSERT_CAPTURE = f"INSERT INTO captures ({_CAPTURE_COLS}) VALUES ({', '.join('?' * len(_CAPTURE_FIELDS))})"
_FAILURE_COLS = ", ".join(f.name for f in fields(FailureRow))
_DUMP_COLS = ", ".join(f.name for f in fields(DumpRow))


def _article(row: Sequence[Any] | None) -> ArticleRow | None:
    if row is None:
        return None
    *head, errors = row
    return ArticleRow(*head, errors=json.loads(errors) if errors else [])


class State:
    """The state of one output folder: open with `State.open(path)` or `State.for_crawler(crawler)`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        lock_path: Path,
        retry: RetryPolicy,
    ) -> None:
        self._conn = conn
        self.path = path
        self.lock_path = lock_path
        self.retry = retry
        self.run_id: str | None = None  # the run started here; its own claims are not orphans
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
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
            _migrate(conn, path)
        except BaseException:
            conn.close()
            raise
        lock = Path(lock_path) if lock_path is not None else path.parent / ".lock"
        return cls(conn, path, lock, retry or RetryPolicy())

    @classmethod
    def for_crawler(cls, crawler: Any) -> State:
        """The crawler's state, opened once from its settings and closed when its engine stops."""
        state: State | None = getattr(crawler, "_archiver_state", None)
        if state is not None and not state.closed:
            return state
        from scrapy import signals

        settings = crawler.settings
        out = config.output_dir(settings)
        path = Path(config.get(settings, "ARCHIVER_STATE_PATH") or out / "state.sqlite3")
        earlier = earlier_runs(out)
        if earlier and (not path.exists() or path.stat().st_size == 0):
            raise StateDamaged(
                f"state file {path} is {'empty' if path.exists() else 'missing'} but {out} holds earlier runs "
                f"({earlier}): a new state would fetch and write the archive again; rebuild it with "
                f"`{REBUILD_HINT.format(out=out)}`"
            )
        state = cls.open(
            path,
            lock_path=out / ".lock",
            synchronous=str(config.get(settings, "ARCHIVER_STATE_SYNCHRONOUS")),
            retry=RetryPolicy(
                max_attempts=int(config.get(settings, "ARCHIVER_FAILURE_MAX_ATTEMPTS")),
                base=float(config.get(settings, "ARCHIVER_FAILURE_BACKOFF")),
                cap=float(config.get(settings, "ARCHIVER_FAILURE_BACKOFF_MAX")),
            ),
        )
        crawler._archiver_state = state
        # engine_stopped comes after spider_closed, so components may still write in spider_closed.
        crawler.signals.connect(state.close, signal=signals.engine_stopped, weak=False)
        return state

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
        if self._lock_fd is not None:
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateLocked(
                f"output folder {self.lock_path.parent} is in use by run {holder.get('run_id', '?')} "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                f"{holder.get('started', '?')}); this run refuses to start. Wait for that run to end or "
                "stop it.",
                holder,
            ) from None
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._lock_fd = fd

    def release_run_lock(self) -> None:
        """Let go of the run lock (closing the file releases the flock)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        """True while this State holds the run lock."""
        return self._lock_fd is not None

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
        recheck_after: float,
        depth: int = 0,
        via: str | int | None = None,
    ) -> Claim:
        """Decide whether this run fetches the article, and if so mark it claimed by `run_id`.

        Fetch: new, due for recheck, failed and due for retry, claimed by a run that never finished it
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
        recheck_after: float,
        errors: Iterable[str] = (),
        *,
        changed: bool = True,
        retry_now: bool = False,
    ) -> ArticleRow:
        """Record the outcome of a claimed article: `archived` (a new version if `changed`) or `failed`.

        A failed article is retried with backoff until `max_attempts`, then given up; one archived
        before keeps its archived status and falls back to its normal recheck time instead. With `retry_now`
        (the failure was local, e.g. a WARC write error) the next run retries it and no attempt is counted.
        """
        if status not in (ARCHIVED, FAILED):
            raise ValueError(f"status must be {ARCHIVED!r} or {FAILED!r}, not {status!r}")
        aid = int(article_id)
        err_list = list(errors)
        errs = json.dumps(err_list, ensure_ascii=False) if err_list else None
        with self._tx() as c:
            row = c.execute(
                "SELECT first_archived, attempts, version FROM articles WHERE article_id = ?", (aid,)
            ).fetchone()
            if row is None:
                raise KeyError(f"article {aid} was never claimed")
            first_archived, attempts, version = row
            if status == ARCHIVED:
                c.execute(
                    "UPDATE articles SET status = ?, version = ?, first_archived = coalesce(first_archived, ?), "
                    "last_checked = ?, next_check = ?, attempts = 0, errors = ?, last_run_id = ? "
                    "WHERE article_id = ?",
                    (
                        ARCHIVED,
                        version + 1 if changed or version == 0 else version,
                        now,
                        now,
                        now + recheck_after,
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
                    wait = self.retry.delay(attempts) if attempts < self.retry.max_attempts else recheck_after
                    next_check: float | None = now + wait
                    if attempts >= self.retry.max_attempts:
                        attempts = 0
                elif attempts >= self.retry.max_attempts:
                    new_status, next_check = GIVEN_UP, None
                else:
                    new_status, next_check = FAILED, now + self.retry.delay(attempts)
                c.execute(
                    "UPDATE articles SET status = ?, attempts = ?, next_check = ?, errors = ?, last_run_id = ? "
                    "WHERE article_id = ?",
                    (new_status, attempts, next_check, errs, run_id, aid),
                )
            return _article(c.execute(f"SELECT {_ARTICLE_COLS} FROM articles WHERE article_id = ?", (aid,)).fetchone())  # type: ignore[return-value]

    def due_rechecks(
        self, now: float, limit: int | None = None, *, recheck_after: float | None = None
    ) -> Iterator[ArticleRow]:
        """Archived articles whose recheck time has come (or, with `recheck_after`, last checked that long ago)."""
        cut = now - recheck_after if recheck_after is not None else None
        where = "status = 'archived' AND (next_check <= :now OR last_checked <= :cut)"
        yield from self._articles_where(where, {"now": now, "cut": cut}, limit)

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

    def run_jobs(self, run_id: str) -> Iterator[str]:
        """The JSON of every job `run_id` holds, by article id, one page at a time."""
        last = -(2**63)
        while True:
            rows = self._query(
                "SELECT article_id, job FROM jobs WHERE run_id = ? AND article_id > ? "
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


class StateCaptureIndex:
    """The WARC writer's digest index (`archiver.warc.dedupe.CaptureIndex`) served by the state, across runs."""

    def __init__(self, state: State) -> None:
        self.state = state

    def last_capture(self, url: str) -> CaptureRow | None:
        """The newest full 200 response of `url` (what a 304 confirms), or None."""
        return self.state.last_capture(url, statuses=(200,), record_type="response")

    def find_by_digest(self, url: str, payload_digest: str) -> CaptureRow | None:
        """The first full response of `url` with this payload digest, or None."""
        return self.state.find_by_digest(url, payload_digest)

    def add_capture(self, ref: Any) -> None:
        """Record a written record (a CaptureRef or CaptureRow); validators and run id when it has them."""
        self.state.add_capture(CaptureRow.from_ref(ref, self.state.run_id))


def capture_index(crawler: Any) -> StateCaptureIndex:
    """Factory for ARCHIVER_WARC_CAPTURE_INDEX (`archiver.state.store:capture_index`): revisits across runs."""
    return StateCaptureIndex(State.for_crawler(crawler))


def _claim_reason(prev: ArticleRow, run_id: str, now: float, recheck_after: float, depth: int) -> str:
    """Why an existing article is (or is not) fetched by this claim."""
    if prev.last_run_id == run_id:
        return UPGRADE if depth < prev.depth and prev.status != GIVEN_UP else DUPLICATE
    if prev.status == CLAIMED:
        return RESUME
    if prev.status == ARCHIVED:
        due = (prev.next_check is not None and prev.next_check <= now) or (
            prev.last_checked is not None and prev.last_checked + recheck_after <= now
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


def _read_holder(fd: int) -> dict[str, Any]:
    """Who holds the lock, as the holder wrote it into the lock file."""
    for _ in range(20):  # the holder may be between truncate and write
        raw = os.pread(fd, 4096, 0)
        if raw.strip():
            try:
                return dict(json.loads(raw))
            except ValueError:
                pass
        time.sleep(0.01)
    return {}


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


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION, all pending migrations in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(f"{path}: schema version {version} is newer than this archiver knows ({SCHEMA_VERSION})")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            logger.info("state %s: migrated to schema version %d", path, number)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def earlier_runs(out: Path) -> str | None:
    """What in an output folder shows that runs wrote to it (WARC files, items, reports), or None."""
    found = [
        f"{sub}/{pattern}"
        for sub, pattern in (("warc", "*.warc.gz*"), ("items", "*.jsonl"), ("reports", "*.json"))
        if (out / sub).is_dir() and next((out / sub).glob(pattern), None) is not None
    ]
    return ", ".join(found) or None


def run_id_for(crawler: Any) -> str:
    """The run's id: `ARCHIVER_RUN_ID`, else `<spider>-<UTC time>-<pid>` (set into the settings if possible)."""
    settings = crawler.settings
    run_id = settings.get("ARCHIVER_RUN_ID")
    if not run_id:
        run_id = f"{crawler.spidercls.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
        if not settings.frozen:
            settings.set("ARCHIVER_RUN_ID", run_id, priority="spider")
    return str(run_id)


def _refusal_already_logged(record: logging.LogRecord) -> bool:
    """asyncio log filter: Scrapy hands a refused start to asyncio, which would print StateLocked again, traceback
    and all, as "Task exception was never retrieved"; the one error line above says it (exit status stays 1)."""
    return not (record.exc_info and isinstance(record.exc_info[1], StateError))


class StateExtension:
    """Takes the output folder's run lock before the crawl starts and records the run in the state.

    A second run on a locked folder refuses: `from_crawler` raises `StateLocked`, so `scrapy crawl` logs
    the holder and exits with status 1 before anything is fetched or written.
    """

    def __init__(self, crawler: Any, state: State, run_id: str) -> None:
        self.crawler = crawler
        self.state = state
        self.run_id = run_id

    @classmethod
    def from_crawler(cls, crawler: Any) -> StateExtension:
        from scrapy import signals

        try:
            state = State.for_crawler(crawler)
        except StateError as exc:
            logger.error("%s", exc)
            logging.getLogger("asyncio").addFilter(_refusal_already_logged)
            raise
        run_id = run_id_for(crawler)
        try:
            state.acquire_run_lock(run_id)
        except StateLocked as exc:
            logger.error("%s", exc)
            logging.getLogger("asyncio").addFilter(_refusal_already_logged)
            state.close()
            raise
        dead = state.start_run(run_id, time.time())
        for other in dead:
            logger.warning("run %s on this output never finished (killed?): its unfinished work is redone", other)
        ext = cls(crawler, state, run_id)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Record the run's outcome and stats."""
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        try:
            State.for_crawler(self.crawler).finish_run(self.run_id, time.time(), reason, stats)
        except (sqlite3.Error, StateError) as exc:  # the next run sees this run as interrupted: nothing is lost
            problem = f"state {self.state.path}: run {self.run_id} not recorded as finished: {exc}"
            logger.error("%s", problem)
            self.crawler.signals.send_catch_log(archiver_signals.run_problem, problem=problem)
