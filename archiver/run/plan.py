"""What one run does: which jobs to fetch (from the state), which dumps named them, what became of each.

The frontier lives in the state's `jobs` table, not in memory: a job is stored when its article is
claimed and deleted once the article is archived, so a run killed at any moment leaves its unfinished
work for the next run, and memory does not grow with the corpus or the history.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from scrapy import signals as scrapy_signals

from archiver import config, signals
from archiver.dw.dumps import FeedEntry
from archiver.items.model import ArticleItem
from archiver.items.storage import items_file, written_ids
from archiver.run.assemble import CAPTURE_LOSS, feed_ref
from archiver.run.jobs import ArticleJob, job_from_entry
from archiver.run.outage import stop_if_disk_full
from archiver.state.store import ARCHIVED, CLAIMED, FAILED, State, StateError

logger = logging.getLogger(__name__)

UNCHANGED_DUMP = "unchanged since an earlier run"


def parse_time(value: str | None) -> datetime | None:
    """A `since`/`until` argument (ISO date or date-time; UTC when no zone is given)."""
    return config.parse_datetime(value) if value else None


# Reasons a later run would meet again unchanged (gone, refused by scope, over a size limit): a partial
# item with only these is archived as it is; any other error keeps the article failed, to be retried.
PERMANENT_REASONS = ("HTTP 410", "out of scope", "too large")


def needs_retry(item: ArticleItem) -> bool:
    """Whether a later run should fetch the article again: failed, or partial for a passing reason."""
    return retry_needed(item.status, [e.reason for e in item.errors])


def retry_needed(status: str, reasons: list[str]) -> bool:
    """`needs_retry` of an item's status and error reasons (also for items read back from JSON)."""
    if status == "failed":
        return True
    return status == "partial" and any(not r.startswith(PERMANENT_REASONS) for r in reasons)


def archived_item(data: dict[str, Any]) -> bool:
    """Whether an item read back from an items file was taken as archived (not failed, to be retried)."""
    return not retry_needed(data.get("status", ""), [e.get("reason", "") for e in data.get("errors") or []])


def lost_locally(item: ArticleItem) -> bool:
    """Whether the item failed here, not at the server (a capture not written): the next run retries it at once."""
    return any(e.reason.startswith(CAPTURE_LOSS) for e in item.errors)


def content_changed(item: ArticleItem) -> bool:
    """Whether the page or API gave new content: a full 200 response, not a 304 or a same-digest revisit."""
    return any(
        c.role in ("page", "api") and c.status in (200, 203) and c.record_type in (None, "response")
        for c in item.captures
    )


class RunPlan:
    """The run's book: dump outcomes, the jobs to fetch (once per id), claims of cited articles."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.run_id: str = settings["ARCHIVER_RUN_ID"]
        self.recheck_after = float(config.get(settings, "ARCHIVER_RECHECK_AFTER"))
        self.output_dir = config.output_dir(settings)
        factory = config.get(settings, "ARCHIVER_REFERENCE_CLAIMS")
        self.shared_claim: Callable[[int], bool] | None = config.load_factory(factory)(crawler) if factory else None
        self.planned = 0
        self.unwritten: set[int] = set()  # articles whose item did not reach the items file

    @classmethod
    def for_crawler(cls, crawler: Any) -> RunPlan:
        """The plan of this crawler's run (one per crawler)."""
        plan = getattr(crawler, "_archiver_plan", None)
        if plan is None:
            plan = crawler._archiver_plan = cls(crawler)
        return plan

    @property
    def stats(self) -> Any:
        """The crawler's stats (they exist only once the crawl starts, after the spider)."""
        return self.crawler.stats

    @property
    def state(self) -> State:
        """The output folder's state (opened on first use)."""
        return State.for_crawler(self.crawler)

    # --- dumps ---

    def dump_outcome(self, path: str, outcome: str, reason: str | None = None) -> None:
        """Account for one input file: read, duplicate, skipped or failed (with a reason)."""
        self.stats.inc_value(f"archiver/dumps/{outcome}")
        self.crawler.signals.send_catch_log(signals.dump_processed, path=path, outcome=outcome, reason=reason)

    def unchanged(self, path: str) -> str | None:
        """A skip reason for a dump recorded earlier with the same size and mtime (it is not read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None  # the reader names what is wrong with it
        return None if self.state.dump_changed(path, st.st_size, st.st_mtime) else UNCHANGED_DUMP

    def _record_dump(self, path: str, outcome: str, reason: str | None) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        self.state.record_dump(path, st.st_size, st.st_mtime, None, outcome, reason, self.run_id)

    def dump_failed(self, path: str, status: str, reason: str) -> None:
        """A file that is no readable dump (failed) or no dump at all (skipped)."""
        self.dump_outcome(path, status, reason)
        if reason != UNCHANGED_DUMP:
            self._record_dump(path, status, reason)

    def add_entry(self, entry: FeedEntry, *, limit: int | None = None) -> None:
        """Plan the entry's article, once per id; later dumps of the same id are duplicates."""
        assert entry.article_id is not None
        state, now = self.state, time.time()
        if limit is not None and self.planned >= limit and not state.has_job(entry.article_id, self.run_id):
            self.dump_outcome(entry.path, "skipped", "over limit")  # not recorded: a later run reads it
            return
        claim = state.claim_article(
            entry.article_id,
            kind=entry.kind,
            page_url=entry.page_url,
            api_url=entry.api_url,
            run_id=self.run_id,
            now=now,
            recheck_after=self.recheck_after,
        )
        if claim.fetch:
            state.put_job(entry.article_id, job_from_entry(entry).to_json(), self.run_id)
            self.planned += 1
            outcome, reason = "read", None
        elif claim.duplicate:
            state.add_job_feed(entry.article_id, feed_ref(entry))
            outcome, reason = "duplicate", f"article {entry.article_id} already named in this run"
        else:
            outcome, reason = "duplicate", f"article {entry.article_id} archived earlier ({claim.reason})"
        self.dump_outcome(entry.path, outcome, reason)
        self._record_dump(entry.path, outcome, reason)

    def open(self) -> None:
        """Follow written items; connected once the crawl runs, so after the feed exporter writes them."""
        for signal in (scrapy_signals.item_scraped, scrapy_signals.item_dropped, scrapy_signals.item_error):
            self.crawler.signals.connect(self.item_written, signal=signal)
        self.crawler.signals.connect(self.item_not_written, signal=signals.item_not_written)

    def item_not_written(self, item: Any, error: BaseException) -> None:
        """The item's line is not in the items file: its article stays claimed, for the next run to redo."""
        if isinstance(item, ArticleItem):
            self.unwritten.add(item.article_id)
        if not stop_if_disk_full(self.crawler, error, self.output_dir / "items"):
            self.crawler.signals.send_catch_log(signals.run_problem, problem=f"items not written: {error}")

    def add_job(self, job: ArticleJob) -> bool:
        """Claim a job that came from elsewhere (the Redis queue); False when the state says nothing is due."""
        claim = self.state.claim_article(
            job.article_id,
            kind=job.kind,
            page_url=job.page_url,
            api_url=job.api_url,
            run_id=self.run_id,
            now=time.time(),
            recheck_after=0 if job.recheck else self.recheck_after,
        )
        if not claim.fetch:
            return False
        self.state.put_job(job.article_id, job.to_json(), self.run_id)
        self.planned += 1
        return True

    def resume(self) -> int:
        """Claim what earlier runs left: unfinished claims (killed runs) and failures due for a retry.

        A killed run may have written an item and died before the state knew: its items file says so,
        and such an article is closed as archived instead of being fetched (and itemised) twice.
        """
        state, now, n, recovered = self.state, time.time(), 0, 0
        written: dict[str, set[int]] = {}
        for row in list(state.due_retries(now, run_id=self.run_id)):
            claim = state.claim_article(row.article_id, run_id=self.run_id, now=now, recheck_after=self.recheck_after)
            if not claim.fetch:
                continue
            dead_run = row.last_run_id if row.status == CLAIMED else None
            if dead_run:
                if dead_run not in written:
                    path = items_file(self.output_dir, dead_run)
                    written[dead_run] = written_ids(path, keep=archived_item)
                if row.article_id in written[dead_run]:
                    state.finish_article(row.article_id, ARCHIVED, self.run_id, now, self.recheck_after)
                    state.delete_job(row.article_id)
                    recovered += 1
                    continue
            stored = state.get_job(row.article_id)
            if stored is None:  # a cited article, or a recheck: rebuilt from what the state knows
                job = ArticleJob(row.article_id, row.kind or "reference", row.page_url, depth=row.depth)
                stored = job.to_json()
            state.put_job(row.article_id, stored, self.run_id)
            n += 1
        self.planned += n
        self.stats.set_value("archiver/articles/resumed", n)
        self.stats.set_value("archiver/articles/recovered_from_items", recovered)
        return n

    def plan_rechecks(self) -> int:
        """Claim the archived articles whose recheck time has come, whether or not a dump names them."""
        state, now, n = self.state, time.time(), 0
        for row in list(state.due_rechecks(now, recheck_after=self.recheck_after)):
            claim = state.claim_article(row.article_id, run_id=self.run_id, now=now, recheck_after=self.recheck_after)
            if claim.fetch:
                job = ArticleJob(row.article_id, row.kind or "article", row.page_url, recheck=True, depth=row.depth)
                state.put_job(row.article_id, job.to_json(), self.run_id)
                n += 1
        self.planned += n
        self.stats.set_value("archiver/articles/rechecks", n)
        return n

    def reading_done(self) -> None:
        """All dumps are read: the number of articles to fetch is known."""
        self.stats.set_value("archiver/articles/planned", self.planned)

    def jobs(self) -> Iterator[ArticleJob]:
        """The jobs this run claimed, in id order, read from the state a page at a time."""
        for text in self.state.run_jobs(self.run_id):
            yield ArticleJob.from_json(text)

    # --- per article ---

    def claim_reference(self, article_id: int, via: int, depth: int) -> bool:
        """Whether a cited article's API is fetched now: once per id, and again only when due."""
        if self.shared_claim is not None and not self.shared_claim(article_id):
            self.stats.inc_value("archiver/references/claimed_elsewhere")
            return False
        claim = self.state.claim_article(
            article_id,
            kind="reference",
            api_url=ArticleJob(article_id, "reference", None).api_url,
            run_id=self.run_id,
            now=time.time(),
            recheck_after=self.recheck_after,
            depth=depth,
            via=str(via),
        )
        if not claim.fetch:
            self.stats.inc_value("archiver/references/not_fetched")
        return claim.fetch

    def article_finished(self, item: ArticleItem, *, recheck: bool = False) -> bool:
        """Whether the item is emitted (not for a recheck that found nothing new); commit what is not."""
        changed = content_changed(item)
        group = "references" if item.kind == "reference" else "articles"
        if recheck and item.status != "failed" and not changed:
            self._commit(item, changed)
            self.stats.inc_value(f"archiver/{group}/unchanged")
            return False
        previous = self.state.get_article(item.article_id)
        version = previous.version if previous else 0
        # The version the state will record in _commit: a new one only for content it stores as archived.
        archived = not needs_retry(item)
        item.version = version + 1 if archived and (changed or version == 0) else max(1, version)
        self.stats.inc_value(f"archiver/{group}/{item.status}")
        return True

    def item_written(self, item: Any) -> None:
        """An emitted item is in the items file (or was refused): only now is its article done."""
        if not isinstance(item, ArticleItem):
            return
        if item.article_id in self.unwritten:
            self.unwritten.discard(item.article_id)
            return
        try:
            self._commit(item, content_changed(item))
        except (sqlite3.Error, StateError) as exc:  # the article stays claimed: the next run does it again
            if not stop_if_disk_full(self.crawler, exc, self.state.path):
                problem = f"state not updated for article {item.article_id}: {exc}"
                logger.error("%s", problem)
                self.crawler.signals.send_catch_log(signals.run_problem, problem=problem)

    def _commit(self, item: ArticleItem, changed: bool) -> None:
        status = FAILED if needs_retry(item) else ARCHIVED
        errors = [f"{e.url}: {e.reason}" for e in item.errors]
        now = time.time()
        finish = (item.article_id, status, self.run_id, now, self.recheck_after, errors)
        retry_now = status == FAILED and lost_locally(item)
        try:
            self.state.finish_article(*finish, changed=changed, retry_now=retry_now)
        except KeyError:  # a job claimed elsewhere (a distributed feeder): record the claim, then the outcome
            self.state.claim_article(
                item.article_id, kind=item.kind, page_url=item.url, api_url=item.api_url,
                run_id=self.run_id, now=now, recheck_after=self.recheck_after,
            )  # fmt: skip
            self.state.finish_article(*finish, changed=changed, retry_now=retry_now)
        if status == ARCHIVED:
            self.state.delete_job(item.article_id)
