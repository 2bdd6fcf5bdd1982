"""Feed Redis from dumps: read them with the spider's reader, merge entries per article id, push new jobs.

Only new dumps: every file fed is recorded in Redis (path -> size, mtime, sha256), so feeding the same
folder twice pushes nothing; a touched file whose content did not change is skipped without a push.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from archiver.distributed.connection import Keys
from archiver.distributed.queue import JobQueue
from archiver.dw.dumps import DEFAULT_MAX_BYTES, DumpResult, iter_dumps
from archiver.run.jobs import ArticleJob, feed_ref, job_from_entry

OUTCOMES = ("read", "duplicate", "skipped", "failed")


@dataclass(slots=True)
class FeedSummary:
    """What one feed did: dumps by outcome (with reasons) and jobs by fate."""

    dumps: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: {o: Counter() for o in OUTCOMES})
    files: list[dict[str, Any]] = field(default_factory=list)
    jobs: Counter[str] = field(default_factory=Counter)
    reaped_jobs: int = 0

    def outcome(self, path: str, outcome: str, reason: str | None = None) -> None:
        """Account for one input file."""
        self.dumps[outcome] += 1
        if reason:
            self.reasons[outcome][reason] += 1
        if outcome != "read":
            self.files.append({"path": path, "outcome": outcome, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "dumps": {o: self.dumps[o] for o in OUTCOMES},
            "reasons": {o: dict(r.most_common()) for o, r in self.reasons.items() if r},
            "jobs": {k: self.jobs[k] for k in ("pushed", "already_archived", "already_queued")},
            "reaped_jobs": self.reaped_jobs,
            "files": self.files,
        }

    def to_text(self) -> str:
        """The summary for people."""
        d = self.dumps
        lines = [
            f"dumps: {d['read']} read, {d['duplicate']} duplicate, {d['skipped']} skipped, {d['failed']} failed",
            f"jobs: {self.jobs['pushed']} pushed, {self.jobs['already_archived']} already archived, "
            f"{self.jobs['already_queued']} already queued",
        ]
        for outcome in OUTCOMES[1:]:
            for reason, n in self.reasons[outcome].most_common():
                lines.append(f"  {outcome}: {reason}: {n}")
        if self.reaped_jobs:
            lines.append(f"jobs of dead workers put back: {self.reaped_jobs}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DumpMark:
    """What Redis remembers of a dump fed: enough to tell a new or changed file without reading it twice."""

    size: int
    mtime: float
    sha256: str

    @classmethod
    def of(cls, path: str) -> DumpMark | None:
        """The mark of a file on disk, or None when it cannot be read."""
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime, digest)


class Feeder:
    """Reads dumps into jobs (one per article id) and pushes the new ones."""

    def __init__(self, conn: redis.Redis, keys: Keys, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.conn = conn
        self.keys = keys
        self.queue = JobQueue(conn, keys)
        self.max_bytes = max_bytes

    def _seen(self, path: str, mark: DumpMark) -> str | None:
        """Why a dump needs no feeding (already fed, or same content as a fed dump), or None."""
        raw = self.conn.hget(self.keys.dumps, path)
        if raw:
            old = json.loads(raw)
            if old["sha256"] == mark.sha256:
                return "already fed"
        if self.conn.sismember(self.keys.dump_digests, mark.sha256):
            return "same content as a dump already fed"
        return None

    def feed(self, paths: Iterable[str], *, refeed: bool = False, force: bool = False) -> FeedSummary:
        """Feed the new dumps under `paths`; `refeed` reads fed dumps again (failed articles are pushed
        again), `force` also pushes articles already archived or queued."""
        summary = FeedSummary()
        summary.reaped_jobs, _ = self.queue.reap()
        jobs: dict[int, ArticleJob] = {}
        first_path: dict[int, str] = {}
        marks: dict[str, DumpMark] = {}
        for result in iter_dumps(paths, max_bytes=self.max_bytes):
            self._read(result, summary, jobs, first_path, marks, refeed or force)
        for article_id, job in jobs.items():
            if self.queue.push(job, force=force):
                summary.jobs["pushed"] += 1
                continue
            path = first_path[article_id]
            summary.dumps["read"] -= 1
            if self.queue.is_done(article_id):
                summary.jobs["already_archived"] += 1
                summary.outcome(path, "skipped", "article already archived")
            else:
                summary.jobs["already_queued"] += 1
                summary.outcome(path, "duplicate", "article already queued")
        self._remember(marks)
        return summary

    def _read(
        self,
        result: DumpResult,
        summary: FeedSummary,
        jobs: dict[int, ArticleJob],
        first_path: dict[int, str],
        marks: dict[str, DumpMark],
        refeed: bool,
    ) -> None:
        path = result.path
        mark = DumpMark.of(path) if os.path.isfile(path) else None
        if mark is not None and not refeed:
            reason = self._seen(path, mark)
            if reason:
                summary.outcome(path, "skipped" if reason == "already fed" else "duplicate", reason)
                return
        if mark is not None:
            marks[path] = mark
        entry = result.entry
        if entry is None:
            reason = result.error.reason if result.error else "unreadable"
            summary.outcome(path, "skipped" if result.skipped else "failed", reason)
            return
        if entry.article_id is None:
            summary.outcome(path, "skipped", "not a DW article")
            return
        job = jobs.get(entry.article_id)
        if job is not None:
            job.feed.append(feed_ref(entry))
            summary.outcome(path, "duplicate", "article already named")
            return
        jobs[entry.article_id] = job_from_entry(entry)
        first_path[entry.article_id] = path
        summary.outcome(path, "read")

    def _remember(self, marks: dict[str, DumpMark]) -> None:
        """Record the dumps fed (after their jobs were pushed: a feeder killed midway feeds them again)."""
        if not marks:
            return
        pipe = self.conn.pipeline()
        for path, mark in marks.items():
            pipe.hset(
                self.keys.dumps, path, json.dumps({"size": mark.size, "mtime": mark.mtime, "sha256": mark.sha256})
            )
            pipe.sadd(self.keys.dump_digests, mark.sha256)
        pipe.execute()
