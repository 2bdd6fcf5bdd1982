"""The main job: archive the DW articles that feed dumps name, and the articles they cite.

Thin by design: reading is `archiver.dw.dumps`, assembling items `archiver.run.assemble`, extraction
`archiver.extraction.pool`, WARC writing a downloader middleware, memory across runs `archiver.state.store`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.http import Response, TextResponse
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

from archiver import config, signals
from archiver.dw.api import ApiError, parse_article_json
from archiver.dw.dumps import API_URL, DumpResult, FeedEntry, iter_dumps
from archiver.extraction.pool import ExtractionPool
from archiver.fetch.scope import out_of_scope
from archiver.items.model import ArticleItem, ItemError, TextRecord
from archiver.items.storage import items_file
from archiver.run.assemble import CONTENT_STATUSES, ArticleParts, Fetched, article_item
from archiver.run.ids import run_id_for
from archiver.run.jobs import ArticleJob
from archiver.run.outage import stop_if_disk_full
from archiver.run.plan import RunPlan
from archiver.state.errors import StateError
from archiver.timefmt import now_iso
from archiver.warc.lookup import archived_body
from archiver.warc.middleware import CAPTURE_ERROR
from archiver.warc.writer import WrittenRecord

READ_BATCH = 256


def bundled_dumps() -> str:
    """The sample dumps shipped in the package (the main job's default input), as a real folder.

    Inside a zipped egg (scrapyd) they are no folder on disk: they are copied to a temporary one.
    """
    sample = resources.files("archiver").joinpath("data", "sample-dumps")
    if isinstance(sample, Path) and sample.is_dir():
        return str(sample)
    folder = Path(tempfile.mkdtemp(prefix="archiver-sample-dumps-"))
    for entry in sample.iterdir():
        if entry.is_file():
            (folder / entry.name).write_bytes(entry.read_bytes())
    return str(folder)


# Every status but the redirects reaches the callbacks; redirects are followed (in scope only, see
# archiver.fetch.scope) up to REDIRECT_MAX_TIMES, so a loop or an off-site target ends as a recorded failure.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HANDLED_STATUSES = [s for s in range(100, 600) if s not in REDIRECT_STATUSES]

# Exception names and messages -> the reason label that items, report and state group by.
_REASON_LABELS = (
    ("larger than download max size", "too large"),
    ("exceeded DOWNLOAD_MAXSIZE", "too large"),  # HttpCompressionMiddleware: the decoded body is over the limit
    ("max redirections reached", "redirect loop"),
    ("out of scope", "out of scope"),
    ("redirect off-site", "redirect off-site"),
    ("ResponseDataLossError", "data loss"),
    ("TimeoutError", "timeout"),
)

_IGNORED_RESPONSE = re.compile(r"^Ignored response <[^>]*> because its ")


def failure_reason(failure: Failure | BaseException) -> str:
    """A short reason for an exchange that gave no response: `label: ExceptionName: message` (timeout, ...)."""
    exc = failure.value if isinstance(failure, Failure) else failure
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _IGNORED_RESPONSE.sub("", text)  # the URL is the error's own; keep the sizes within 300 characters
    detail = f"{name}: {text}" if text else name
    label = next((lab for key, lab in _REASON_LABELS if key in detail), None)
    if label in ("out of scope", "redirect off-site"):  # ScopeMiddleware's message names host and URL already
        return text[:300]
    return f"{label}: {detail}"[:300] if label else detail[:300]


class FeedDumpSpider(Spider):
    """Archive pages, API JSON, cited articles and images for every DW article in the dumps."""

    name = "feeddump"

    def __init__(
        self,
        dumps: str | None = None,
        refs_depth: str | int | None = None,
        media: str | bool | None = None,
        requisites: str | bool | None = None,
        limit: str | int | None = None,
        since: str | None = None,
        until: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        args = config.parse_spider_args(
            {
                "dumps": dumps,
                "refs_depth": refs_depth,
                "media": media,
                "requisites": requisites,
                "limit": limit,
                "since": since,
                "until": until,
            }
        )
        self.dump_paths = [p for p in (dumps or "").split(",") if p.strip()] or [bundled_dumps()]
        self._args = {"refs_depth": args["refs_depth"], "media": args["media"]}
        self.limit = args["limit"]
        self.since = args["since"]
        self.until = args["until"]
        self.requisites = args["requisites"]  # read by archiver.fetch.requisites (ARCHIVER_REQUISITES when None)

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """Name the run and send items to `<output>/items/<run>.jsonl` unless FEEDS is set."""
        super().update_settings(settings)
        run_id = run_id_for(settings, cls.name)
        if not settings.getdict("FEEDS"):
            items = items_file(config.output_dir(settings), run_id)
            feeds = {str(items): {"format": "jsonlines", "encoding": "utf-8"}}
            settings.set("FEEDS", feeds, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> FeedDumpSpider:
        spider: FeedDumpSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.run_id = settings["ARCHIVER_RUN_ID"]
        depth = spider._args["refs_depth"]
        spider.refs_depth = int(depth if depth is not None else config.get(settings, "ARCHIVER_REFS_DEPTH"))
        media = spider._args["media"]
        spider.media = media if media is not None else bool(config.get(settings, "ARCHIVER_MEDIA"))
        spider.allowed_hosts = frozenset(h.lower() for h in config.get_list(settings, "ARCHIVER_ALLOWED_HOSTS"))
        spider.max_refs = int(config.get(settings, "ARCHIVER_MAX_REFERENCES"))
        spider.max_images = int(config.get(settings, "ARCHIVER_MAX_IMAGES"))
        spider.max_dump_bytes = int(config.get(settings, "ARCHIVER_DUMP_MAX_BYTES"))
        spider.plan = RunPlan(crawler)
        spider.extractor = ExtractionPool.from_crawler(crawler)
        spider.warc_dir = config.output_dir(settings) / "warc"
        return spider

    # --- reading ---

    async def start(self) -> AsyncIterator[Any]:
        """Resume unfinished work, read the new dumps, plan the due rechecks; then fetch every job."""
        self.plan.open()
        if not config.get(self.settings, "ARCHIVER_READ_DUMPS"):
            return
        try:
            await self._plan()
        except (OSError, sqlite3.Error, StateError) as exc:
            if stop_if_disk_full(self.crawler, exc, config.output_dir(self.settings)):
                return
            raise
        for job in self.plan.jobs():
            if self.crawler.engine.needs_backout():
                # Scrapy drains start() into the scheduler while the downloader is busy: wait for the scheduler
                # to empty, so the frontier stays in the state instead of memory (Scrapy's start-requests-lazy).
                await self.crawler.signals.wait_for(scrapy_signals.scheduler_empty)
            yield self.job_request(job)

    async def _plan(self) -> None:
        """Resume unfinished work, read the dumps, plan the due rechecks (into the state's jobs)."""
        self.plan.resume()
        results = iter_dumps(self.dump_paths, max_bytes=self.max_dump_bytes, skip=self.plan.unchanged)
        for n, result in enumerate(results, 1):
            self._read(result)
            if n % READ_BATCH == 0:
                await asyncio.sleep(0)  # let the reactor breathe between batches
        self.plan.plan_rechecks()
        self.plan.reading_done()

    def _read(self, result: DumpResult) -> None:
        entry = result.entry
        if entry is None:
            reason = result.error.reason if result.error else "unreadable"
            self.plan.dump_failed(result.path, result.status, reason)
        elif not entry.is_dw:
            self.plan.dump_failed(result.path, "skipped", "not a DW article")
        elif not self._in_window(entry):
            self.plan.dump_outcome(result.path, "skipped", "outside since/until")
        else:
            self.plan.add_entry(entry, limit=self.limit)

    def _in_window(self, entry: FeedEntry) -> bool:
        if self.since is None and self.until is None:
            return True
        if entry.feed_time is None:
            return False
        return (self.since is None or entry.feed_time >= self.since) and (
            self.until is None or entry.feed_time < self.until
        )

    # --- fetching ---

    @staticmethod
    def _meta(job: ArticleJob, role: str, via: str | None, hop: int) -> dict[str, Any]:
        provenance = {"article_id": job.article_id, "role": role, "via": via, "hop": hop, "dumps": job.provenance()}
        return {"archiver": provenance, "handle_httpstatus_list": HANDLED_STATUSES}

    def job_request(self, job: ArticleJob) -> Request:
        """The scheduled request of a job: its page, or its API JSON for an article without page."""
        role = "page" if job.page_url else "api"
        meta = self._meta(job, role, None, 0) | {"job": job}
        return Request(
            job.page_url or job.api_url,
            callback=self.parse_job,
            errback=self.job_failed,
            meta=meta,
            dont_filter=True,
        )

    def accept_job(self, job: ArticleJob) -> Request | None:
        """A job from elsewhere (archiver.distributed): claimed in this output's state, then its request."""
        return self.job_request(job) if self.plan.add_job(job) else None

    async def _fetch(self, url: str, role: str, meta: dict[str, Any]) -> Fetched:
        """Fetch one URL through the downloader middlewares (WARC capture included)."""
        parsed = urlsplit(url)
        refused = out_of_scope(parsed.scheme, parsed.hostname, self.allowed_hosts)
        if refused:
            self.crawler.stats.inc_value("archiver/scope/refused")  # counted like ScopeMiddleware's refusals
            return Fetched(url=url, role=role, error=f"out of scope: {refused}")
        request = Request(url, meta=meta, dont_filter=True)
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # any failure without a response is recorded, never raised
            return Fetched(url=url, role=role, error=failure_reason(exc))
        return fetched_from(response, role)

    async def parse_job(self, response: Response) -> AsyncIterator[ArticleItem]:
        """First exchange in hand: fetch the rest of the job, then emit its items."""
        job: ArticleJob = response.meta["job"]
        async for item in self._finish_guarded(job, fetched_from(response, response.meta["archiver"]["role"])):
            yield item

    async def job_failed(self, failure: Failure) -> AsyncIterator[ArticleItem]:
        """The first exchange gave no response: the rest of the job is still archived."""
        request = failure.request  # type: ignore[attr-defined]
        url = (request.meta.get("redirect_urls") or [request.url])[0]  # the URL asked for, not a redirect target
        first = Fetched(url=url, role=request.meta["archiver"]["role"], error=failure_reason(failure))
        async for item in self._finish_guarded(request.meta["job"], first):
            yield item

    async def _finish_guarded(self, job: ArticleJob, first: Fetched) -> AsyncIterator[ArticleItem]:
        """`_finish`, except that a full disk stops the run instead of failing here: the job stays claimed in the
        state, so the next run does it."""
        try:
            async for item in self._finish(job, first):
                yield item
        except (OSError, sqlite3.Error, StateError) as exc:
            if not stop_if_disk_full(self.crawler, exc, config.output_dir(self.settings)):
                raise

    async def _finish(self, job: ArticleJob, first: Fetched) -> AsyncIterator[ArticleItem]:
        parts = ArticleParts(job=job)
        if first.role == "api":
            parts.api = first
        else:
            parts.page = first
            parts.api = await self._fetch(job.api_url, "api", self._meta(job, "api", first.url, 1))
        parts.api_article = self._api_article(parts)
        image_urls = [url for url, _ in job.images[: self.max_images]] if self.media else []
        fetches = (self._fetch(url, "image", self._meta(job, "image", first.url, 1)) for url in image_urls)
        parts.images = list(await asyncio.gather(*fetches))
        await self._extract_page(parts)
        parts.depth = job.depth
        item = article_item(parts, self.run_id)
        async for ref_item in self._references(item, job.depth):
            yield ref_item
        if self._finished(item, recheck=job.recheck):
            yield item

    def _api_article(self, parts: ArticleParts) -> Any:
        api = parts.api
        if api is None or not api.has_body:
            return None
        try:
            doc = parse_article_json(api.body)
        except ApiError as exc:
            api.error = f"invalid API JSON: {exc.reason}"
            return None
        self._text_extracted(api, doc.text)
        return doc

    async def _extract_page(self, parts: ArticleParts) -> None:
        page = parts.page
        if page is None:
            return
        body = page.body if page.has_body else self._confirmed_body(page, parts)
        if not body:
            return
        try:
            parts.page_text = await self.extractor.extract(body, page.url, feed_body=parts.job.body_html)
        except Exception as exc:
            reason = f"extraction failed: {failure_reason(exc)}"
            parts.extra_errors.append(ItemError(url=page.url, reason=reason))
            return
        if page.has_body:  # a 304's text is already in the conversion record of the capture it confirms
            self._text_extracted(page, parts.page_text.text or "")
        parts.agreement = parts.page_text.agreement

    def _confirmed_body(self, page: Fetched, parts: ArticleParts) -> bytes | None:
        """For a page that answered 304: the body of its last full capture, read back from the WARC file."""
        if page.status != 304 or page.error:
            return None
        row = self.plan.state.last_capture(page.url, statuses=(200,), record_type="response")
        if row is None or not row.warc_file or row.offset is None:
            return None
        try:
            return archived_body(self.warc_dir, row.warc_file, row.offset, self.settings.getint("DOWNLOAD_MAXSIZE"))
        except (OSError, ValueError) as exc:
            reason = f"304: archived page unreadable: {row.warc_file}@{row.offset}: {exc}"[:300]
            parts.extra_errors.append(ItemError(url=page.url, reason=reason))
            return None

    def _text_extracted(self, part: Fetched, text: str | None) -> None:
        """Announce the text; the WARC writer's answer (where its conversion record went) goes on the capture."""
        record_id = (part.capture or {}).get("record_id")
        if text and record_id:
            answers = self.crawler.signals.send_catch_log(
                signals.text_extracted, url=part.url, record_id=record_id, text=text
            )
            part.conversion = next((text_record(w) for _, w in answers if isinstance(w, WrittenRecord)), None)

    async def _references(self, item: ArticleItem, depth: int) -> AsyncIterator[ArticleItem]:
        """API JSON of the articles cited by an item at `depth`, breadth first up to `refs_depth` hops."""
        frontier: list[tuple[int, int]] = [(r, item.article_id) for r in item.references[: self.max_refs]]
        for hop in range(depth + 1, self.refs_depth + 1):
            claimed = [(r, via) for r, via in frontier if self.plan.claim_reference(r, via, hop)]
            results = await asyncio.gather(*(self._reference(r, via, hop) for r, via in claimed))
            frontier = []
            for ref_item in results:
                if self._finished(ref_item):
                    yield ref_item
                frontier.extend((r, ref_item.article_id) for r in ref_item.references[: self.max_refs])

    async def _reference(self, article_id: int, via: int, depth: int) -> ArticleItem:
        job = ArticleJob(article_id=article_id, kind="reference", page_url=None)
        parts = ArticleParts(job=job, via=via, depth=depth)
        parts.api = await self._fetch(job.api_url, "api", self._meta(job, "api", API_URL.format(via), depth))
        parts.api_article = self._api_article(parts)
        return article_item(parts, self.run_id)

    def _finished(self, item: ArticleItem, *, recheck: bool = False) -> bool:
        """Record the outcome; False when a recheck found nothing new, so no new item version."""
        emit = self.plan.article_finished(item, recheck=recheck)
        self.crawler.signals.send_catch_log(signals.article_finished, item=item, new_version=emit)
        return emit


def fetched_from(response: Response, role: str) -> Fetched:
    """The outcome of an exchange that produced a response."""
    meta = response.meta
    error = meta.get(CAPTURE_ERROR) or (
        "truncated body" if "dataloss" in response.flags else encoding_error(response, role)
    )
    return Fetched(
        url=response.url,
        role=role,
        status=response.status,
        body=response.body,
        error=error,
        capture=meta.get("warc_capture"),
        fetched_at=(meta.get("warc_capture") or {}).get("fetched_at") or now_iso(),
    )


def encoding_error(response: Response, role: str) -> str | None:
    """`encoding: ...` when a page or API body is not valid in the charset its headers or <meta> declare."""
    if role not in ("page", "api") or response.status not in CONTENT_STATUSES or not response.body:
        return None
    content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
    declared = http_content_type_encoding(content_type) or html_body_declared_encoding(response.body[:4096])
    if not declared:
        return None
    if isinstance(response, TextResponse) and response.encoding == declared and "\ufffd" not in response.text:
        # Scrapy decoded the body with the declared charset (MetaRefreshMiddleware reads `text`), replacing
        # what was invalid with U+FFFD: none there, so the body is valid, and decoding it again only costs time.
        return None
    try:
        response.body.decode(declared)
    except LookupError:
        return f"encoding: unknown charset {declared!r}"
    except UnicodeDecodeError as exc:
        return f"encoding: body is not valid {declared} (byte {exc.start})"
    return None


def text_record(written: WrittenRecord) -> TextRecord:
    """The item's pointer to a written conversion record."""
    return TextRecord(written.warc_file, written.offset, written.length, written.record_id)
