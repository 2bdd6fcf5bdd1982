"""The state file's schema: each migration a list of statements, applied in one transaction; user_version = its
1-based index, so a file is brought up to date by the migrations it has not had."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from archiver.state.errors import StateError

logger = logging.getLogger(__name__)

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
    (  # 4: the recheck schedule: publication time, age step of the next check, the last change a recheck found
        "ALTER TABLE articles ADD COLUMN published REAL",
        "ALTER TABLE articles ADD COLUMN tier INTEGER",
        "ALTER TABLE articles ADD COLUMN last_change REAL",
        "ALTER TABLE articles ADD COLUMN last_change_kind TEXT",
        "CREATE INDEX articles_due_tier ON articles (status, tier, next_check)",
    ),
    (  # 5: the history of each article's versions and findings (archiver.run.changes); no row per unchanged recheck
        """CREATE TABLE changes (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL, version INTEGER NOT NULL, at REAL NOT NULL,
            kind TEXT NOT NULL, fields TEXT, observed TEXT NOT NULL, digests TEXT, captures TEXT,
            moved_to TEXT, url TEXT, title TEXT, run_id TEXT)""",
        "CREATE INDEX changes_article ON changes (article_id, id)",
        "CREATE INDEX changes_at ON changes (at)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
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
