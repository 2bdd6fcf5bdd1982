"""A new state from what an output folder holds, for a state file that is damaged or lost.

The items (`items/*.jsonl`) say which articles were archived and where each capture's record is; a capture counts
only when its WARC file holds a record with that id at that offset, so an article whose records are gone is
fetched again instead of being taken as archived. Reports give the runs, the dumps named by items their
"read" marks. Nothing already archived is fetched or written twice by the next run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from archiver.items.model import ArticleItem, Capture, FeedRef, ImageRef, ItemError
from archiver.run.jobs import ArticleJob
from archiver.run.plan import needs_retry
from archiver.state.store import ARCHIVED, FAILED, CaptureRow, State
from archiver.warc.lookup import read_record_at


@dataclass(slots=True)
class Rebuilt:
    """What a rebuild found: articles archived and to retry, captures kept and missing, runs."""

    archived: int = 0
    retry: int = 0
    captures: int = 0
    missing: list[str] = field(default_factory=list)  # `file@offset record_id` of captures whose record is gone
    runs: int = 0
    dumps: int = 0


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (None when absent or unreadable)."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def iter_items(items_dir: Path) -> Iterator[ArticleItem]:
    """Every item of every run, oldest run first (by file time); lines that are not items are skipped."""
    files = sorted(items_dir.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name)) if items_dir.is_dir() else []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and "article_id" in data:
                    yield item_from_json(data)


def item_from_json(data: dict[str, Any]) -> ArticleItem:
    """An ArticleItem from its exported JSON."""
    parts = {
        "images": [ImageRef(**i) for i in data.get("images") or []],
        "feed": [FeedRef(**f) for f in data.get("feed") or []],
        "captures": [Capture(**c) for c in data.get("captures") or []],
        "errors": [ItemError(**e) for e in data.get("errors") or []],
    }
    known = set(ArticleItem.__dataclass_fields__)
    return ArticleItem(**({k: v for k, v in data.items() if k in known} | parts))


class RecordCheck:
    """Whether a capture's record is where the item says (cached per file and offset)."""

    def __init__(self, warc_dir: Path) -> None:
        self.warc_dir = warc_dir
        self.seen: dict[tuple[str, int], str | None] = {}

    def present(self, capture: Capture) -> bool:
        if not capture.warc_file or capture.offset is None or not capture.record_id:
            return False
        key = (capture.warc_file, capture.offset)
        if key not in self.seen:
            try:
                self.seen[key] = read_record_at(self.warc_dir / capture.warc_file, capture.offset).get("WARC-Record-ID")
            except (OSError, ValueError, UnicodeDecodeError, EOFError):
                self.seen[key] = None
        return self.seen[key] == capture.record_id


def rebuild_state(out: Path, state: State, now: float | None = None) -> Rebuilt:
    """Fill an empty state from the output folder `out`."""
    now = time.time() if now is None else now
    result = Rebuilt()
    check = RecordCheck(out / "warc")
    latest: dict[int, tuple[ArticleItem, bool, int]] = {}  # id -> (newest item, its records present, versions)
    dumps: dict[str, str | None] = {}
    for item in iter_items(out / "items"):
        present = True
        for cap in item.captures:
            if check.present(cap):
                result.captures += 1
                state.add_capture(CaptureRow.from_ref(cap, item.run_id))
            elif cap.record_id or cap.warc_file:
                present = False
                result.missing.append(f"{cap.warc_file}@{cap.offset} {cap.record_id}")
            else:
                present = False
        previous = latest.get(item.article_id)
        latest[item.article_id] = (item, present, max(item.version, previous[2] if previous else 0))
        for feed in item.feed:
            dumps[feed.file] = item.run_id
    with state.transaction() as c:
        for aid, (item, present, version) in latest.items():
            archived = present and not needs_retry(item)
            checked = max((epoch(c.fetched_at) or 0 for c in item.captures), default=0) or now
            c.execute(
                "INSERT INTO articles (article_id, kind, page_url, api_url, status, first_archived, last_checked, "
                "next_check, version, last_run_id, depth, via, first_seen, attempts, errors) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    aid,
                    item.kind,
                    item.url,
                    item.api_url,
                    ARCHIVED if archived else FAILED,
                    checked if archived else None,
                    checked,
                    None if archived else now,
                    version if archived else 0,
                    item.run_id,
                    item.depth,
                    str(item.via) if item.via is not None else None,
                    checked,
                    json.dumps([f"{e.url}: {e.reason}" for e in item.errors], ensure_ascii=False) or None,
                ),
            )
            if archived:
                result.archived += 1
                continue
            result.retry += 1
            job = ArticleJob(
                article_id=aid,
                kind=item.kind,
                page_url=item.url if item.kind != "reference" else None,
                title=item.title or "",
                published=item.published,
                images=[(i.url, i.caption) for i in item.images],
                references=list(item.references),
                feed=list(item.feed),
                depth=item.depth,
            )
            state.put_job(aid, job.to_json(), item.run_id or "rebuilt", now)
        reports = sorted((out / "reports").glob("*.json")) if (out / "reports").is_dir() else []
        for path in reports:
            try:
                report = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            c.execute(
                "INSERT OR REPLACE INTO runs (run_id, started, finished, outcome, stats) VALUES (?, ?, ?, ?, ?)",
                (
                    report.get("run_id") or path.stem,
                    epoch(report.get("started")),
                    epoch(report.get("finished")),
                    report.get("finish_reason"),
                    json.dumps({"rebuilt_from": str(path)}),
                ),
            )
            result.runs += 1
    for path, run_id in dumps.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        state.record_dump(path, st.st_size, st.st_mtime, None, "read", None, run_id or "rebuilt")
        result.dumps += 1
    return result
