"""The run report (`<output>/reports/<run>.json` plus a summary in the log) and progress lines."""

from __future__ import annotations

import json
import logging
import os
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
from archiver.run.assemble import now_iso

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Tally:
    """Counts of one kind of item by status and by error reason."""

    complete: int = 0
    partial: int = 0
    failed: int = 0
    unchanged: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, item: ArticleItem, new_version: bool = True) -> None:
        """Count one finished item (a recheck that found nothing new counts as unchanged)."""
        if not new_version:
            self.unchanged += 1
            return
        setattr(self, item.status, getattr(self, item.status) + 1)
        for error in item.errors:
            self.reasons[error.reason] += 1

    @property
    def done(self) -> int:
        """Articles finished, whatever their outcome."""
        return self.complete + self.partial + self.failed + self.unchanged


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
        self.warc_files: list[dict[str, Any]] = []
        self.finish_reason = "unknown"
        self._progress: task.LoopingCall | None = None
        self.tty = sys.stderr.isatty()

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.dump_processed, signal=signals.dump_processed)
        crawler.signals.connect(ext.article_finished, signal=signals.article_finished)
        crawler.signals.connect(ext.warc_file_closed, signal=signals.warc_file_closed)
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
        for capture in item.captures:
            if capture.role == "image":
                self.images["archived"] += 1
        self.images["failed"] += sum(1 for e in item.errors if "/image/" in e.url)
        if item.status != "complete":
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

    def spider_opened(self, spider: Any) -> None:
        if self.interval > 0:
            self._progress = task.LoopingCall(self.log_progress)
            self._progress.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.finish_reason = reason
        if self._progress is not None and self._progress.running:
            self._progress.stop()
        if self.tty:
            sys.stderr.write("\n")

    def engine_stopped(self) -> None:
        """Write the report last, once WARC files are closed and checked (they close at spider_closed)."""
        report = self.report(self.finish_reason)
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        logger.info("%s", self.summary(report, path))

    # --- output ---

    def planned(self) -> int:
        return int(self.crawler.stats.get_value("archiver/articles/planned", 0) or 0)

    def log_progress(self) -> None:
        """One progress line: dumps read, articles done of planned, rate and ETA."""
        done, planned = self.articles.done, self.planned()
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = done / elapsed * 60
        eta = (planned - done) / (done / elapsed) if done and planned > done else 0.0
        line = (
            f"dumps read {sum(self.dumps.values())}, articles {done}/{planned or '?'}, "
            f"references {self.references.done}, {rate:.1f} articles/min, ETA {eta:.0f}s"
        )
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
        }

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
            f"  images: {report['images'].get('archived', 0)} archived, {report['images'].get('failed', 0)} failed",
            "  requisites: " + ", ".join(f"{report.get('requisites', {}).get(k, 0)} {k}" for k in REQUISITE_OUTCOMES),
            f"  bytes: {report['bytes']}, items written: {report['items_written']}",
            f"  WARC files: {len(report['warc_files'])}, failing checks: "
            f"{sum(1 for w in report['warc_files'] if not w['ok'])}",
        ]
        if report["failures"] or d["failed"] or d["skipped"]:
            lines.append(f"  failures and skipped dumps are listed in {path}")
        lines.append(f"  report: {path}")
        return "\n".join(lines)
