"""The crawler's one WARC writer: captures exchanges, writes conversion records, recovers, indexes and checks files.

Other components find it with `crawler.get_extension(WarcWriterExtension)`: the capture middleware, the page
requisites. Capture records go to `*.warc.gz` files, conversion (extracted-text) records to `*.warc.wet.gz` files.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred, DeferredList

from archiver import signals as archiver_signals
from archiver.config import get, load_factory, output_dir
from archiver.run.outage import stop_if_disk_full
from archiver.state.store import State
from archiver.warc.check import CheckResult
from archiver.warc.dedupe import CaptureIndex, CaptureRef, as_prior, memory_index
from archiver.warc.finalize import finalize_file
from archiver.warc.records import (
    IDENTICAL_PAYLOAD_DIGEST,
    SERVER_NOT_MODIFIED,
    VERSIONS,
    WARC_1_0,
    BodyTooLarge,
    Exchange,
    build_conversion,
    build_exchange,
    build_metadata,
    decode_content,
    has_outlinks,
    outlinks,
    provenance_fields,
    sha1_digest,
)
from archiver.warc.recover import Recovery, recover_dir
from archiver.warc.warcinfo import warcinfo_fields
from archiver.warc.writer import OPEN_SUFFIX, WET_SUFFIX, RollingWarcWriter, WrittenRecord

logger = logging.getLogger(__name__)


def load_index_factory(path: str | None) -> Callable[[Crawler], CaptureIndex]:
    """The factory named by ARCHIVER_WARC_CAPTURE_INDEX (`module:function` or `module.function`)."""
    return load_factory(path) if path else memory_index


def _header_list(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k in headers for v in headers.getlist(k)]


@dataclass(frozen=True, slots=True)
class Captured:
    """One written exchange: where its response record is, and its body decoded if the capture decoded it."""

    location: dict[str, Any]  # what `request.meta["warc_capture"]` holds
    decoded_body: bytes | None = None  # content-encoded body, decoded as Scrapy would decode it


@dataclass(frozen=True, slots=True)
class PreparedExchange:
    """One exchange as `WarcWriterExtension.prepare` leaves it for `write`."""

    exchange: Exchange
    digest: str  # the body's SHA-1, as WARC-Payload-Digest
    provenance: list[tuple[str, object]]  # fields of the metadata record (outlinks included)
    etag: str | None
    last_modified: str | None
    decoded_body: bytes | None


class WarcWriterExtension:
    """Owns the rolling writer of one crawler and everything that happens to its files."""

    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.enabled = bool(get(s, "ARCHIVER_WARC_ENABLED"))
        self.version = str(get(s, "ARCHIVER_WARC_VERSION"))
        if self.version not in VERSIONS:
            raise ValueError(f"ARCHIVER_WARC_VERSION must be one of {VERSIONS}, not {self.version!r}")
        self.directory = output_dir(s) / "warc"
        self.check_on_close = bool(get(s, "ARCHIVER_WARC_CHECK_ON_CLOSE"))
        self.max_size = s.getint("DOWNLOAD_MAXSIZE")
        self.index: CaptureIndex = load_index_factory(get(s, "ARCHIVER_WARC_CAPTURE_INDEX"))(crawler)
        files = {
            "prefix": str(get(s, "ARCHIVER_WARC_PREFIX")),
            "version": self.version,
            "max_size": int(get(s, "ARCHIVER_WARC_MAX_SIZE")),
            "gzip_level": int(get(s, "ARCHIVER_WARC_GZIP_LEVEL")),
            "warcinfo_fields": self._warcinfo_fields,
            "on_close": self._file_closed,
        }
        self.writer = RollingWarcWriter(self.directory, **files)
        # Conversion records go to files of their own (Common Crawl's WET): under a page's URI in the capture
        # files, a replay tool's latest capture of the page would be its extracted text.
        self.text_writer = RollingWarcWriter(self.directory, suffix=WET_SUFFIX, **files)
        self._pending: list[Deferred] = []
        self._finalizer: ProcessPoolExecutor | None = None
        self.results: list[CheckResult] = []
        if self.enabled:
            crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
            crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
            crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)
            crawler.signals.connect(self.text_extracted, signal=archiver_signals.text_extracted)
            crawler.signals.connect(self.article_finished, signal=archiver_signals.article_finished)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcWriterExtension:
        return cls(crawler)

    def _warcinfo_fields(self) -> list[tuple[str, object]]:
        return warcinfo_fields(self.crawler.settings, self.version, getattr(self.crawler.spider, "name", None))

    # --- capture ------------------------------------------------------------------------------------------
    def prepare(self, request: Request, response: Response) -> PreparedExchange | None:
        """The CPU-heavy half of a capture, which writes nothing: the body's digest, decoding and links (None: not
        captured). `write` then writes the exchange: request, response or revisit, metadata if it has any."""
        if not self.enabled or "cached" in response.flags:
            return None
        now = datetime.now(UTC)
        if self.version == WARC_1_0:
            now = now.replace(microsecond=0)
        truncated = "disconnect" if "dataloss" in response.flags else None
        exchange = Exchange(
            url=request.url,
            method=request.method,
            request_headers=_header_list(request.headers),
            request_body=request.body or b"",
            protocol=getattr(response, "protocol", None),
            status=response.status,
            response_headers=_header_list(response.headers),
            body=response.body,
            fetched_at=now,
            ip_address=str(response.ip_address) if response.ip_address else None,
            truncated=truncated,
        )
        links, decoded = self._outlinks(request, response)
        header = response.headers.get
        return PreparedExchange(
            exchange=exchange,
            digest=sha1_digest(response.body),
            provenance=provenance_fields(request.meta.get("archiver"), links),
            etag=(header(b"ETag") or b"").decode("latin-1") or None,
            last_modified=(header(b"Last-Modified") or b"").decode("latin-1") or None,
            decoded_body=decoded,
        )

    def write(self, prepared: PreparedExchange) -> Captured:
        """Write a prepared exchange (a revisit if the index has its payload) and index it; where it went.

        The index is asked here, not in `prepare`: what another capture wrote meanwhile counts.
        """
        exchange, digest = prepared.exchange, prepared.digest
        url, status, body = exchange.url, exchange.status, exchange.body
        prior, profile = None, None
        if status == 304:
            prior = as_prior(self.index.last_capture(url))
            profile = SERVER_NOT_MODIFIED if prior else None
        elif status == 200 and body and not exchange.truncated:
            prior = as_prior(self.index.find_by_digest(url, digest))
            profile = IDENTICAL_PAYLOAD_DIGEST if prior else None
        records = build_exchange(exchange, self.version, prior, profile, payload_digest=digest)
        group = [records.request, records.response]
        if any(value not in (None, "") for _, value in prepared.provenance):  # robots.txt has nothing to tell
            record_id = records.response.record_id
            group.append(build_metadata(url, record_id, prepared.provenance, exchange.fetched_at, self.version))
        written = self.writer.write(group)
        resp = written[1]
        fetched_at = records.response.get("WARC-Date") or ""
        payload_digest = records.response.get("WARC-Payload-Digest") or digest
        self.index.add_capture(
            CaptureRef(
                url=url,
                record_id=resp.record_id,
                fetched_at=fetched_at,
                payload_digest=payload_digest,
                warc_file=resp.warc_file,
                offset=resp.offset,
                length=resp.length,
                status=status,
                record_type=resp.record_type,
                truncated=exchange.truncated is not None,
                etag=prepared.etag,
                last_modified=prepared.last_modified,
            )
        )
        self.stats.inc_value("warc/exchanges")
        self.stats.inc_value(f"warc/records/{resp.record_type}")
        self.stats.inc_value("warc/records", len(written))
        self.stats.inc_value("warc/bytes", sum(w.length for w in written))
        location = {
            "warc_file": resp.warc_file,
            "offset": resp.offset,
            "length": resp.length,
            "record_id": resp.record_id,
            "payload_digest": payload_digest,
            "record_type": resp.record_type,
            "fetched_at": fetched_at,
        }
        return Captured(location, prepared.decoded_body)

    def _outlinks(self, request: Request, response: Response) -> tuple[list[str], bytes | None]:
        """Links of an HTML or JSON body, decoded no further than the DOWNLOAD_MAXSIZE Scrapy applies to it.

        Also the decoded body when it is content-encoded and decodes exactly as Scrapy would decode it.
        """
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        if not response.body or not has_outlinks(ctype):
            return [], None
        encodings = [e.decode("latin-1") for v in response.headers.getlist(b"Content-Encoding") for e in v.split(b",")]
        # Capture runs before HttpCompressionMiddleware: without the limit a gzip bomb would inflate here.
        max_size = int(request.meta.get("download_maxsize", self.max_size)) or None
        try:
            decoded, scrapy_same = decode_content(response.body, encodings, max_size)
        except BodyTooLarge:
            self.stats.inc_value("warc/outlinks_skipped/too_large")
            return [], None
        if decoded is None:
            self.stats.inc_value("warc/outlinks_skipped/undecodable")
            return [], None
        return outlinks(request.url, ctype, decoded), decoded if encodings and scrapy_same else None

    def text_extracted(self, url: str, record_id: str, text: str, **kwargs: Any) -> WrittenRecord | None:
        """Answer `archiver.signals.text_extracted` with a conversion record in the text files; where it went."""
        record = build_conversion(url, record_id, text, datetime.now(UTC), self.version)
        try:
            (written,) = self.text_writer.write([record])
        except OSError as exc:
            self.stats.inc_value("warc/conversion_errors")
            logger.error("WARC conversion record of %s not written: %s", url, exc)
            stop_if_disk_full(self.crawler, exc, self.directory)
            return
        self.stats.inc_value("warc/records/conversion")
        self.stats.inc_value("warc/records")
        return written

    def article_finished(self, item: Any, **kwargs: Any) -> None:
        """A recheck's metadata record: its kind, changed fields and the previous version's captures (provenance)."""
        change = getattr(item, "change", None)
        capture = next((c for c in item.captures if c.role in ("page", "api") and c.record_id), None)
        if change is None or capture is None:
            return
        fields: list[tuple[str, object]] = [
            ("article-id", item.article_id),
            ("recheck", change.kind),
            ("changed-fields", ",".join(change.fields)),
            ("moved-to", change.moved_to),
            ("version", item.version),
        ]
        fields += [("previous-capture", record_id) for record_id in item.previous_captures]
        self.writer.write([build_metadata(capture.url, capture.record_id, fields, datetime.now(UTC), self.version)])
        self.stats.inc_value("warc/records/metadata")
        self.stats.inc_value("warc/records")

    # --- files --------------------------------------------------------------------------------------------
    def spider_opened(self, spider: scrapy.Spider) -> None:
        for rec in recover_dir(self.directory):
            self.stats.inc_value("warc/recovered_files")
            self._forget_lost(rec)
            if rec.path is None:
                logger.warning("WARC recovery: removed %s (no complete record)", rec.source)
                continue
            logger.warning(
                "WARC recovery: %s closed after %d complete records (%d bytes cut)",
                rec.path,
                rec.records,
                rec.dropped_bytes,
            )
            self._file_closed(rec.path)

    def _forget_lost(self, rec: Recovery) -> None:
        """The state forgets captures whose records recovery cut off: their articles are fetched again."""
        if not rec.dropped_bytes:
            return
        name = rec.source.name.removesuffix(OPEN_SUFFIX)
        articles = State.for_crawler(self.crawler).forget_captures(name, rec.kept_bytes)
        if articles:
            logger.warning("WARC recovery: %d articles had records in the part cut off; fetched again", len(articles))

    async def spider_closed(self, spider: scrapy.Spider) -> None:
        """Close the current files and wait until every closed file is indexed, checked and reported."""
        for writer in (self.writer, self.text_writer):
            self._close_writer(writer)
        await maybe_deferred_to_future(DeferredList(list(self._pending)))

    def engine_stopped(self) -> None:
        """Close files opened by records written after spider_closed (late conversions), checking them in place."""
        for writer in (self.writer, self.text_writer):
            writer.on_close = None
            final = self._close_writer(writer)
            if final is not None:
                self._report(self._finalize(final))
        if self._finalizer is not None:
            self._finalizer.shutdown(wait=True)

    def _close_writer(self, writer: RollingWarcWriter) -> Path | None:
        """Close a writer's current file; when that fails (a full disk), the run fails and the file stays `.open`,
        for the next run's recovery to cut at its last complete record."""
        try:
            return writer.close()
        except OSError as exc:
            problem = f"WARC file {writer.current_name} not closed: {exc}"
            logger.error("%s", problem)
            if not stop_if_disk_full(self.crawler, exc, self.directory):
                self.crawler.signals.send_catch_log(archiver_signals.run_problem, problem=problem)
            return None

    def _file_closed(self, path: Path) -> None:
        future = self._finalizer_pool().submit(finalize_file, path, self.version, self.check_on_close)
        d = Deferred.fromFuture(asyncio.wrap_future(future))
        d.addCallback(self._report)
        d.addErrback(lambda f: logger.error("WARC file %s: index/check failed: %s", path, f.getErrorMessage()))
        self._pending.append(d)

    def _finalizer_pool(self) -> ProcessPoolExecutor:
        if self._finalizer is None:
            # A child process, not a thread: indexing and checking a 1 GB file leaves no memory behind in the crawl.
            self._finalizer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
        return self._finalizer

    def _finalize(self, path: Path) -> tuple[Path, CheckResult | None, str | None]:
        return finalize_file(path, self.version, self.check_on_close)

    def _report(self, outcome: tuple[Path, CheckResult | None, str | None]) -> None:
        path, result, error = outcome
        problems = [str(p) for p in result.problems] if result else []
        if error:
            problems.append(f"{path}:0 - cdxj: {error}")
        ok = not problems
        records = result.records if result else 0
        self.stats.inc_value("warc/files_closed")
        if result:
            self.results.append(result)
        if ok:
            logger.info("WARC file closed: %s (%d records, check passed)", path, records)
        else:
            self.stats.inc_value("warc/files_failed")
            self.stats.inc_value("warc/problems", len(problems))
            logger.error("WARC file %s FAILED the check: %d problems", path, len(problems))
            for line in problems[:20]:
                logger.error("WARC problem: %s", line)
        self.crawler.signals.send_catch_log(
            archiver_signals.warc_file_closed, path=str(path), ok=ok, problems=problems, records=records
        )
