"""The run report (`<output>/reports/<run>.json` plus a summary in the log) and progress lines."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scrapy import signals as scrapy_signals
from twisted.internet import task

from archiver import config, signals
from archiver.items.model import ArticleItem
from archiver.preservation.manifest import record_closed
from archiver.run.changes import CHANGE_KINDS, EDITED, RECHECK_KINDS, REMOVED
from archiver.run.schedule import format_span
from archiver.state.errors import StateError
from archiver.state.store import State
from archiver.timefmt import now_iso

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Tally:
    """Counts of one kind of item by status and by error reason."""

    complete: int = 0
    partial: int = 0
    failed: int = 0
    unchanged: int = 0
    removed: int = 0  # a recheck found it gone (404/410): a finding, not a failure
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, item: ArticleItem, new_version: bool = True) -> None:
        """Count one finished item (a recheck that found nothing new counts as unchanged)."""
        if not new_version:
            self.unchanged += 1
            return
        if is_removal(item):
            self.removed += 1
            return
        setattr(self, item.status, getattr(self, item.status) + 1)
        for error in item.errors:
            self.reasons[error.reason] += 1

    @property
    def done(self) -> int:
        """Articles finished, whatever their outcome."""
        return self.complete + self.partial + self.failed + self.unchanged + self.removed


def is_removal(item: ArticleItem) -> bool:
    """Whether the item records that a recheck found the article removed."""
    return item.change is not None and item.change.kind == REMOVED


def recheck_text(r: dict[str, Any]) -> str:
    """The rechecks of a report in a few words, for the summary and the progress line."""
    text = f"rechecks {r['done']}/{r['planned']} done, {r['skipped_budget']} skipped for budget"
    if r["skipped_budget"]:
        text += f" (oldest overdue {format_span(r['oldest_overdue_seconds'])})"
    return text


def free_space(path: Path) -> str:
    """`N MB free on <mount>` for the disk that holds `path` (or its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    return f"{free // (1024 * 1024)} MB free on the disk of {probe}"


REQUISITE_OUTCOMES = ("archived", "failed", "fresh", "refused")


def short_reason(reason: str) -> str:
    """A reason without the per-URL detail, for grouping."""
    return reason.split(":")[0]


class RunReport:
    """Accounts for every dump, article and WARC file of a run; writes the report at close."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.run_id: str = settings.get("ARCHIVER_RUN_ID") or f"run-{os.getpid()}"
        self.dir = config.output_dir(settings) / "reports"
        self.interval = float(config.get(settings, "ARCHIVER_PROGRESS_INTERVAL"))
        self.started = now_iso()
        self.t0 = time.monotonic()
        self.dumps: Counter[str] = Counter()
        self.dump_files: list[dict[str, Any]] = []
        self.articles = Tally()
        self.references = Tally()
        self.images = Counter()
        self.failures: list[dict[str, Any]] = []
        self.changes: Counter[str] = Counter({kind: 0 for kind in RECHECK_KINDS})
        self.changed: list[dict[str, Any]] = []
        self.warc_files: list[dict[str, Any]] = []
        self.finish_reason = "unknown"
        self.problems: list[str] = []  # what makes the run a failure (exit status 1), besides what stats show
        self.exit_status: int | None = None  # set once the report is written (or could not be)
        self.stopping: str | None = None  # why the run was told to stop early (archiver.run.outage)
        self.unfinished: int | None = None  # claimed articles left unfinished, from the state at close
        self._progress: task.LoopingCall | None = None
        self.tty = sys.stderr.isatty()

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.dump_processed, signal=signals.dump_processed)
        crawler.signals.connect(ext.article_finished, signal=signals.article_finished)
        crawler.signals.connect(ext.warc_file_closed, signal=signals.warc_file_closed)
        crawler.signals.connect(ext.run_problem, signal=signals.run_problem)
        crawler.signals.connect(ext.spider_opened, signal=scrapy_signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=scrapy_signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=scrapy_signals.engine_stopped)
        return ext

    # --- signal handlers ---

    def dump_processed(self, path: str, outcome: str, reason: str | None) -> None:
        self.dumps[outcome] += 1
        if outcome in ("skipped", "failed"):
            self.dump_files.append({"path": path, "outcome": outcome, "reason": reason})
            if outcome == "failed":
                logger.warning("dump failed: %s: %s", path, reason)

    def article_finished(self, item: ArticleItem, new_version: bool = True) -> None:
        (self.references if item.kind == "reference" else self.articles).add(item, new_version)
        if item.change is not None:
            self.changes[item.change.kind] += 1
            if item.change.kind in CHANGE_KINDS:
                self.changed.append(
                    {
                        "article_id": item.article_id,
                        "kind": item.kind,
                        "change": item.change.kind,
                        "fields": list(item.change.fields),
                        "moved_to": item.change.moved_to,
                        "version": item.version,
                        "title": item.title,
                        "url": item.url or item.api_url,
                    }
                )
        for capture in item.captures:
            if capture.role == "image":
                self.images["archived"] += 1
        self.images["failed"] += sum(1 for e in item.errors if "/image/" in e.url)
        if item.status != "complete" and not is_removal(item):
            self.failures.append(
                {
                    "article_id": item.article_id,
                    "kind": item.kind,
                    "status": item.status,
                    "errors": [asdict(e) for e in item.errors],
                }
            )

    def warc_file_closed(self, path: str, ok: bool, problems: list[str], records: int) -> None:
        self.warc_files.append({"path": str(path), "ok": ok, "records": records, "problems": problems[:50]})

    def run_problem(self, problem: str) -> None:
        """A component met something that makes the run a failure (disk full, ...)."""
        if problem not in self.problems:
            self.problems.append(problem)

    def spider_opened(self, spider: Any) -> None:
        # The output folder is this run's alone (the state's run lock): a report left half-written is stale.
        for stale in self.dir.glob("*.json.tmp") if self.dir.is_dir() else ():
            with contextlib.suppress(OSError):
                stale.unlink()
        if self.interval > 0:
            self._progress = task.LoopingCall(self.log_progress)
            self._progress.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.finish_reason = reason
        try:
            self.unfinished = State.for_crawler(self.crawler).count_unfinished(self.run_id)
        except (StateError, sqlite3.Error) as exc:
            logger.error("state not readable at close: %s", exc)
        if self._progress is not None and self._progress.running:
            self._progress.stop()
        if self.tty:
            sys.stderr.write("\n")

    def engine_stopped(self) -> None:
        """Write the report last, once WARC files are closed and checked (they close at spider_closed)."""
        self.finish(self.finish_reason)

    def finish(self, reason: str) -> int:
        """Write the report (once) and return the run's exit status: 0 only when nothing was lost or left undone."""
        if self.exit_status is not None:
            return self.exit_status
        report = self.report(reason)
        path = self.dir / f"{self.run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            logger.error("run report %s not written: %s (%s)", path, exc.strerror or exc, free_space(self.dir))
            self.exit_status = 1
            return 1
        try:
            record_closed(self.dir.parent, path)
        except OSError as exc:  # `scrapy fixity` lists the report as unrecorded, `--adopt` takes it
            logger.error("run report %s not recorded in the fixity manifest: %s", path, exc.strerror or exc)
        logger.info("%s", self.summary(report, path))
        self.exit_status = report["outcome"]["exit_status"]
        return self.exit_status

    # --- output ---

    def planned(self) -> int:
        return int(self.crawler.stats.get_value("archiver/articles/planned", 0) or 0)

    def rechecks(self) -> dict[str, Any]:
        """Scheduled rechecks: due when planned, planned (within the budget), done, left over the budget and how
        late those are (seconds of the oldest, and how many are late by over an hour, a day, a week)."""
        stats = self.crawler.stats

        def value(key: str) -> Any:
            return stats.get_value(f"archiver/rechecks/{key}", 0) or 0

        return {
            "due": value("due"),
            "planned": value("planned"),
            "done": value("done"),
            "named_by_dumps": value("named_by_dumps"),
            "skipped_budget": value("skipped_budget"),
            "oldest_overdue_seconds": value("oldest_overdue"),
            "overdue_over": {label: value(f"overdue_over_{label}") for label in ("1h", "1d", "1w")},
        }

    def log_progress(self) -> None:
        """One progress line: dumps read, articles done of planned, rate and ETA."""
        done, planned = self.articles.done, self.planned()
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = done / elapsed * 60
        eta = (planned - done) / (done / elapsed) if done and planned > done else 0.0
        line = (
            f"dumps read {sum(self.dumps.values())}, articles {done}/{planned or '?'}, "
            f"references {self.references.done}, edits {self.changes[EDITED]}, removals {self.changes[REMOVED]}, "
            f"{rate:.1f} articles/min, ETA {eta:.0f}s"
        )
        r = self.rechecks()
        if r["planned"] or r["skipped_budget"]:
            line += f", {recheck_text(r)}"
        if self.tty and planned:
            width = 30
            filled = int(width * done / planned)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {line}")
            sys.stderr.flush()
        else:
            logger.info("progress: %s", line)

    def report(self, reason: str) -> dict[str, Any]:
        """The run report as a JSON-ready dict."""
        stats = self.crawler.stats
        feeds = self.crawler.settings.getdict("FEEDS")

        def tally(t: Tally) -> dict[str, Any]:
            return {
                "complete": t.complete,
                "partial": t.partial,
                "failed": t.failed,
                "unchanged": t.unchanged,
                "removed": t.removed,
                "by_reason": dict(Counter(short_reason(r) for r in t.reasons.elements()).most_common()),
            }

        return {
            "run_id": self.run_id,
            "spider": getattr(self.crawler.spider, "name", None),
            "started": self.started,
            "finished": now_iso(),
            "finish_reason": reason,
            "dumps": {
                "read": self.dumps["read"],
                "duplicate": self.dumps["duplicate"],
                "skipped": self.dumps["skipped"],
                "failed": self.dumps["failed"],
                "files": self.dump_files,
            },
            "articles": {"planned": self.planned(), **tally(self.articles)},
            "rechecks": self.rechecks(),
            "references": tally(self.references),
            "images": dict(self.images),
            # Page requisites (archiver.fetch.requisites): in the WARC, not in items; `fresh` were captured lately.
            "requisites": {k: stats.get_value(f"archiver/requisites/{k}", 0) for k in REQUISITE_OUTCOMES},
            "bytes": stats.get_value("downloader/response_bytes", 0),
            "requests": stats.get_value("downloader/request_count", 0),
            "items_written": stats.get_value("item_scraped_count", 0),
            "items_files": list(feeds),
            "warc_files": self.warc_files,
            "failures": self.failures,
            "changes": {"counts": dict(self.changes), "articles": self.changed},
            "outcome": self.outcome(reason),
        }

    def outcome(self, reason: str) -> dict[str, Any]:
        """Whether the run did all it claims: `ok` and exit status 0, or the problems that make it fail (1)."""
        stats = self.crawler.stats
        problems = list(self.problems)
        lost = int(stats.get_value("warc/capture_errors", 0) or 0)
        if lost:
            problems.append(f"{lost} exchanges not written to a WARC file (their articles are failed, to be retried)")
        lost = int(stats.get_value("warc/conversion_errors", 0) or 0)
        if lost:
            problems.append(f"{lost} conversion records not written to a WARC file")
        broken = [w["path"] for w in self.warc_files if not w["ok"]]
        if broken:
            problems.append(f"{len(broken)} WARC files failed their check: {', '.join(broken[:5])}")
        unfinished = self.unfinished if self.unfinished is not None else self.planned() - self.articles.done
        if unfinished > 0:
            problems.append(f"{unfinished} planned articles not finished ({reason}); the next run does them")
        return {"ok": not problems, "exit_status": 1 if problems else 0, "problems": problems}

    @staticmethod
    def summary(report: dict[str, Any], path: Path) -> str:
        """A readable summary of the report for the log."""
        d, a, r = report["dumps"], report["articles"], report["references"]
        lines = [
            f"run {report['run_id']} finished ({report['finish_reason']})",
            f"  dumps: {d['read']} read, {d['duplicate']} duplicate, {d['skipped']} skipped, {d['failed']} failed",
            f"  articles: {a['complete']} complete, {a['partial']} partial, {a['failed']} failed,"
            f" {a.get('unchanged', 0)} unchanged of {a['planned']} planned",
            f"  references: {r['complete']} complete, {r['partial']} partial, {r['failed']} failed,"
            f" {r.get('unchanged', 0)} unchanged",
            f"  {recheck_text(report['rechecks'])}" if "rechecks" in report else "",
            f"  images: {report['images'].get('archived', 0)} archived, {report['images'].get('failed', 0)} failed",
            "  requisites: " + ", ".join(f"{report.get('requisites', {}).get(k, 0)} {k}" for k in REQUISITE_OUTCOMES),
            f"  bytes: {report['bytes']}, items written: {report['items_written']}",
            f"  WARC files: {len(report['warc_files'])}, failing checks: "
            f"{sum(1 for w in report['warc_files'] if not w['ok'])}",
        ]
        lines = [line for line in lines if line]
        counts = report.get("changes", {}).get("counts", {})
        if any(counts.values()):
            lines.append("  rechecks: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        for problem in report.get("outcome", {}).get("problems", []):
            lines.append(f"  NOT OK: {problem}")
        if report["failures"] or d["failed"] or d["skipped"]:
            lines.append(f"  failures and skipped dumps are listed in {path}")
        lines.append(f"  report: {path}")
        return "\n".join(lines)
