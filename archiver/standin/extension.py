"""The DW stand-in in a crawl: `-s ARCHIVER_STANDIN=1` starts one on the crawl's reactor and routes DW to it;
`-s ARCHIVER_STANDIN_ADDRESS=host:https,http` routes DW to one already running (`python -m archiver.standin`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future

from archiver import config
from archiver.fetch.resolver import GuardedResolver
from archiver.standin.faults import FaultPlan
from archiver.standin.revisions import RevisionPlan
from archiver.standin.routing import parse_address, route_dw
from archiver.standin.server import Listening, Standin

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class StandinExtension:
    """Start a Standin on spider_opened (dumps from ARCHIVER_STANDIN_DUMPS or `spider.dump_paths`), stop it on close."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.dumps = config.get(settings, "ARCHIVER_STANDIN_DUMPS")
        self.faults = FaultPlan.parse(
            config.get(settings, "ARCHIVER_STANDIN_FAULTS"),
            rate=float(config.get(settings, "ARCHIVER_STANDIN_FAULT_RATE")),
            slow_seconds=float(config.get(settings, "ARCHIVER_STANDIN_SLOW_SECONDS")),
        )
        self.seed = int(config.get(settings, "ARCHIVER_STANDIN_SEED"))
        address = config.get(settings, "ARCHIVER_STANDIN_ADDRESS")
        self.address = parse_address(address) if address else None
        self.revisions = RevisionPlan.parse(
            config.get(settings, "ARCHIVER_STANDIN_REVISIONS"), config.get(settings, "ARCHIVER_STANDIN_EPOCH")
        )
        self.listening: Listening | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StandinExtension:
        settings = crawler.settings
        if not (settings.getbool("ARCHIVER_STANDIN") or config.get(settings, "ARCHIVER_STANDIN_ADDRESS")):
            raise NotConfigured
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        if self.address is not None:
            self._route(*self.address)
            return
        self._start(spider)

    def _route(self, host: str, https_port: int, http_port: int | None) -> None:
        """Route the DW hosts to a stand-in through the crawl's guarded resolver."""
        from twisted.internet import reactor

        resolver: Any = getattr(reactor, "nameResolver", None)
        if isinstance(resolver, GuardedResolver):
            route_dw(resolver, host, https_port, http_port)
        else:
            logger.error(
                "DW stand-in %s but not routed: set TWISTED_DNS_RESOLVER = "
                "'archiver.fetch.resolver.GuardedResolver' (installed resolver: %r)",
                "started" if self.address is None else "at " + ":".join(map(str, self.address[:2])),
                resolver,
            )

    def _start(self, spider: Spider) -> None:
        from twisted.internet import reactor

        dumps = self.dumps or getattr(spider, "dump_paths", None)
        if isinstance(dumps, str):
            dumps = [p for p in dumps.split(",") if p]
        if not dumps:
            logger.error("ARCHIVER_STANDIN is on but no dumps: set ARCHIVER_STANDIN_DUMPS or spider.dump_paths")
            return
        standin = Standin(list(dumps), faults=self.faults, seed=self.seed, revisions=self.revisions)
        self.listening = listening = standin.listen(reactor)
        self._route(listening.host, listening.https_port, listening.http_port)
        self.crawler.stats.set_value("standin/articles", len(standin.corpus))
        logger.info(
            "DW stand-in serving %d articles on https %s, http %s (CA %s)",
            len(standin.corpus),
            listening.https_port,
            listening.http_port,
            listening.ca_cert_path,
        )

    async def spider_closed(self, spider: Spider) -> None:
        if self.listening is None:
            return
        listening, self.listening = self.listening, None
        await maybe_deferred_to_future(listening.stop())
