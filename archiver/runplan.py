"""What one run does: which articles to fetch, which dumps named them, what became of each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from archiver import signals
from archiver.assemble import feed_ref
from archiver.feeddump import FeedEntry
from archiver.items import ArticleItem
from archiver.jobs import ArticleJob, job_from_entry

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def parse_bool(value: str | bool) -> bool:
    """A spider argument such as `media=0` as a bool."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"not a yes/no value: {value!r}")
    return word in TRUE_WORDS


def parse_time(value: str | None) -> datetime | None:
    """A `since`/`until` argument (ISO date or date-time; UTC when no zone is given)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class RunPlan:
    """The run's book: dump outcomes, the jobs to fetch (once per id), claims of cited articles."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self._jobs: dict[int, ArticleJob] = {}
        self._claimed: set[int] = set()

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

    # --- dumps ---

    def dump_outcome(self, path: str, outcome: str, reason: str | None = None) -> None:
        """Account for one input file: read, duplicate, skipped or failed (with a reason)."""
        self.stats.inc_value(f"archiver/dumps/{outcome}")
        if reason:
            self.stats.inc_value(f"archiver/dumps/{outcome}/{reason.split(' ')[0]}")
        self.crawler.signals.send_catch_log(signals.dump_processed, path=path, outcome=outcome, reason=reason)

    def add_entry(self, entry: FeedEntry, *, limit: int | None = None) -> None:
        """Plan the entry's article, once per id; later dumps of the same id are duplicates."""
        assert entry.article_id is not None
        job = self._jobs.get(entry.article_id)
        if job is not None:
            job.feed.append(feed_ref(entry))
            self.dump_outcome(entry.path, "duplicate", f"article {entry.article_id} already named")
            return
        if limit is not None and len(self._jobs) >= limit:
            self.dump_outcome(entry.path, "skipped", "over limit")
            return
        self._jobs[entry.article_id] = job_from_entry(entry)
        self._claimed.add(entry.article_id)
        self.dump_outcome(entry.path, "read")

    def reading_done(self) -> None:
        """All dumps are read: the number of articles to fetch is known."""
        self.stats.set_value("archiver/articles/planned", len(self._jobs))

    def jobs(self) -> Iterator[ArticleJob]:
        """The jobs of this run, in id order."""
        for article_id in sorted(self._jobs):
            yield self._jobs[article_id]

    # --- per article ---

    def claim_reference(self, article_id: int, via: int, depth: int) -> bool:
        """Whether a cited article's API is fetched now (once per id per run)."""
        if article_id in self._claimed:
            self.stats.inc_value("archiver/references/duplicate")
            return False
        self._claimed.add(article_id)
        return True

    def article_finished(self, item: ArticleItem) -> None:
        """Count the item by kind and status, and forget its job."""
        self._jobs.pop(item.article_id, None)
        group = "references" if item.kind == "reference" else "articles"
        self.stats.inc_value(f"archiver/{group}/{item.status}")
