"""What one run does: which jobs to fetch (from the state), which dumps named them, what became of each.

The frontier lives in the state's `jobs` table, not in memory: a job is stored when its article is
claimed and deleted once the article is archived, so a run killed at any moment leaves its unfinished
work for the next run, and memory does not grow with the corpus or the history.
"""

from __future__ import annotations

import itertools
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
from archiver.run.assemble import CAPTURE_LOSS
from archiver.run.changes import (
    CHANGE_KINDS,
    CONTENT,
    GONE,
    NEW,
    REDIRECTED,
    UNCHANGED,
    UNREACHABLE,
    Previous,
    Verdict,
    classify,
    field_digests,
    observe,
)
from archiver.run.jobs import ArticleJob, feed_ref, job_from_entry
from archiver.run.outage import stop_if_disk_full
from archiver.run.schedule import DAY, HOUR, WEEK, lateness
from archiver.state.errors import StateError
from archiver.state.store import ARCHIVED, CLAIMED, FAILED, RECHECK, State

logger = logging.getLogger(__name__)

UNCHANGED_DUMP = "unchanged since an earlier run"
CLAIM_BATCH = 500  # recheck claims committed together


def parse_time(value: str | None) -> datetime | None:
    """A `since`/`until` argument (ISO date or date-time; UTC when no zone is given)."""
    return config.parse_datetime(value) if value else None


# Reasons a later run would meet again unchanged (gone, refused by scope, over a size limit): a partial
# item with only these is archived as it is; any other error keeps the article failed, to be retried.
PERMANENT_REASONS = ("HTTP 410", "out of scope", "too large")


def epoch(value: str | None) -> float | None:
    """An item's ISO date-time (`published`) as epoch seconds (UTC when it names no zone), None if unreadable."""
    try:
        parsed = parse_time(value)
    except ValueError:
        return None
    return parsed.timestamp() if parsed else None


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
        self.policy = config.recheck_policy(settings)
        self.recheck_after = self.policy.fixed  # None: each article's next check comes from the schedule
        self.budget = config.recheck_budget(settings)  # scheduled rechecks per run (None = no limit)
        self.output_dir = config.output_dir(settings)
        factory = config.get(settings, "ARCHIVER_REFERENCE_CLAIMS")
        self.shared_claim: Callable[[int], bool] | None = config.load_factory(factory)(crawler) if factory else None
        self.planned = 0
        self._verdicts: dict[int, Verdict | None] = {}  # rechecks classified, until their item is committed
        self.unwritten: set[int] = set()  # articles whose item did not reach the items file

    @property
    def stats(self) -> Any:
        """The crawler's stats (they exist only once the crawl starts, after the spider)."""
        return self.crawler.stats

    @property
    def state(self) -> State:
        """The output folder's state (the StateExtension's)."""
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
            if claim.reason == RECHECK:
                self.stats.inc_value("archiver/rechecks/named_by_dumps")
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

    def plan_rechecks(self, now: float | None = None) -> int:
        """Claim the archived articles whose recheck time has come, whether or not a dump names them.

        Called after the retries and the dumps, so those always come first. Up to the budget, most overdue first
        (in units of each article's own interval, young before old); the rest stay due for the next run.
        """
        state, n = self.state, 0
        now = time.time() if now is None else now
        due, _ = state.count_due(now, recheck_after=self.recheck_after)
        if self.budget is None:
            rows: Iterator[Any] | list[Any] = state.due_rechecks(now, recheck_after=self.recheck_after)
        elif self.recheck_after is not None:  # one interval for all: most overdue first is the index order
            rows = list(state.due_rechecks(now, self.budget, recheck_after=self.recheck_after))
        else:
            rows = sorted(
                state.recheck_candidates(now, self.budget),
                key=lambda r: lateness(now, r.next_check, r.last_checked, r.tier),
            )[: self.budget]
        pending = iter(rows)
        while batch := list(itertools.islice(pending, CLAIM_BATCH)):
            with state.transaction():  # one commit per batch of claims, not per claim
                for row in batch:
                    claim = state.claim_article(
                        row.article_id, run_id=self.run_id, now=now, recheck_after=self.recheck_after
                    )
                    if claim.fetch:
                        job = ArticleJob(
                            row.article_id, row.kind or "article", row.page_url, recheck=True, depth=row.depth
                        )
                        state.put_job(row.article_id, job.to_json(), self.run_id, now)
                        n += 1
        self.planned += n
        self.stats.set_value("archiver/articles/rechecks", n)
        self.stats.set_value("archiver/rechecks/due", due)
        self.stats.set_value("archiver/rechecks/planned", n)
        self.record_overdue(now)
        return n

    def record_overdue(self, now: float) -> None:
        """Stats of the rechecks still due once the run is planned (over the budget): how many, and how late."""
        state, after = self.state, self.recheck_after
        left, first = state.count_due(now, recheck_after=after)
        self.stats.set_value("archiver/rechecks/skipped_budget", left)
        self.stats.set_value("archiver/rechecks/oldest_overdue", round(now - first, 1) if first is not None else 0.0)
        for label, late in (("1h", HOUR), ("1d", DAY), ("1w", WEEK)):
            self.stats.set_value(
                f"archiver/rechecks/overdue_over_{label}", state.count_due(now - late, recheck_after=after)[0]
            )

    def reading_done(self) -> None:
        """All dumps are read: the number of articles to fetch is known."""
        self.stats.set_value("archiver/articles/planned", self.planned)

    def jobs(self) -> Iterator[ArticleJob]:
        """The jobs this run claimed, read from the state a page at a time: new articles and retries first, then
        the scheduled rechecks (each part in id order), so rechecks never hold up what the dumps brought."""
        for recheck in (False, True):
            for text in self.state.run_jobs(self.run_id, recheck=recheck):
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
        """Whether the item is emitted: a first archive, a change, or a failure; commit what is not.

        An article archived before is compared with its last version (archiver.run.changes): the item
        carries the kind found and the previous captures; only a change makes a new version.
        """
        group = "references" if item.kind == "reference" else "articles"
        if recheck:
            self.stats.inc_value("archiver/rechecks/done")
        previous = self.state.get_article(item.article_id)
        version = previous.version if previous else 0
        verdict = self._verdict(item) if version else None
        self._verdicts[item.article_id] = verdict
        if verdict is not None:
            kind = verdict.change.kind
            self.stats.inc_value(f"archiver/changes/{kind}")
            if kind not in CHANGE_KINDS and not (kind == UNREACHABLE and item.status == "failed"):
                item.version = version
                self._commit(item)
                self.stats.inc_value(f"archiver/{group}/unchanged")
                return False
        changed = verdict is None or verdict.change.kind in CHANGE_KINDS
        archived = self._status(item, verdict) == ARCHIVED
        item.version = version + 1 if archived and changed else max(1, version)
        self.stats.inc_value(f"archiver/{group}/{item.status}")
        return True

    def _verdict(self, item: ArticleItem) -> Verdict:
        """Compare a rechecked article with the last version its history knows (none: this one becomes it)."""
        last = self.state.last_change(item.article_id)
        previous = Previous(last.observed, last.digests, last.moved_to, last.captures) if last is not None else None
        seen = observe(item.article_id, item.captures, item.errors, [i.url for i in item.images])
        digests = field_digests(item) if seen.outcome == CONTENT else (previous.digests if previous else {})
        change = classify(previous, seen, digests)
        item.change = change
        item.previous_captures = previous.record_ids if previous else []
        return Verdict(change, seen, digests, baseline=last is None)

    def item_written(self, item: Any) -> None:
        """An emitted item is in the items file (or was refused): only now is its article done."""
        if not isinstance(item, ArticleItem):
            return
        if item.article_id in self.unwritten:
            self.unwritten.discard(item.article_id)
            return
        try:
            self._commit(item)
        except (sqlite3.Error, StateError) as exc:  # the article stays claimed: the next run does it again
            if not stop_if_disk_full(self.crawler, exc, self.state.path):
                problem = f"state not updated for article {item.article_id}: {exc}"
                logger.error("%s", problem)
                self.crawler.signals.send_catch_log(signals.run_problem, problem=problem)

    @staticmethod
    def _status(item: ArticleItem, verdict: Verdict | None) -> str:
        """Archived or failed (retried with backoff); a removal or move is a finding, never a failure."""
        if verdict is not None and verdict.seen.outcome in (GONE, REDIRECTED):
            return ARCHIVED
        return FAILED if needs_retry(item) else ARCHIVED

    def _commit(self, item: ArticleItem) -> None:
        verdict = self._verdicts.pop(item.article_id, None)
        status = self._status(item, verdict)
        changed = verdict is None or verdict.change.kind in CHANGE_KINDS
        errors = [f"{e.url}: {e.reason}" for e in item.errors]
        now = time.time()
        finish = (item.article_id, status, self.run_id, now, self.recheck_after, errors)
        published = epoch(item.published)
        change_kind = verdict.change.kind if verdict is not None else None
        retry_now = status == FAILED and lost_locally(item)
        outcome = {"changed": changed, "published": published, "change_kind": change_kind, "retry_now": retry_now}
        with self.state.transaction():
            try:
                row = self.state.finish_article(*finish, **outcome)
            except KeyError:  # a job claimed elsewhere (a distributed feeder): record the claim, then the outcome
                self.state.claim_article(
                    item.article_id, kind=item.kind, page_url=item.url, api_url=item.api_url,
                    run_id=self.run_id, now=now, recheck_after=self.recheck_after,
                )  # fmt: skip
                row = self.state.finish_article(*finish, **outcome)
            if status == ARCHIVED and (verdict is None or changed or verdict.baseline):
                self._record_version(item, verdict, row.version, now)
        if status == ARCHIVED:
            self.state.delete_job(item.article_id)

    def _record_version(self, item: ArticleItem, verdict: Verdict | None, version: int, now: float) -> None:
        """One history row: the first version (`new`) or a change, with what the next recheck compares."""
        if verdict is None:
            seen = observe(item.article_id, item.captures, item.errors, [i.url for i in item.images])
            kind, fields, digests, moved_to = NEW, [], field_digests(item), seen.moved_to
        else:
            seen, change, digests = verdict.seen, verdict.change, verdict.digests
            kind = NEW if verdict.baseline and change.kind == UNCHANGED else change.kind
            fields, moved_to = change.fields, change.moved_to
        captures = [
            {"role": c.role, "url": c.url, "status": c.status, "fetched_at": c.fetched_at, "record_id": c.record_id}
            for c in item.captures
            if c.role in ("page", "api")
        ]
        self.state.record_change(
            item.article_id,
            kind,
            version=version,
            observed=seen.outcome,
            at=now,
            fields=fields,
            digests=digests,
            captures=captures,
            moved_to=moved_to,
            url=item.url,
            title=item.title if seen.outcome == CONTENT else None,  # not what a redirect or error page says
            run_id=self.run_id,
        )
