"""The Scrapy add-on that installs archiver's components: `ADDONS = {"archiver.addon.Archiver": 0}`.

Components go in with `setdefault`, so a project that names one of them (for instance `None` to turn it off)
keeps its choice. Settings Scrapy reads before add-ons load (TWISTED_DNS_RESOLVER) stay in the profile.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from archiver import config
from archiver.tuning import decodeonce

# Each component with its place in its chain, as Scrapy's *_BASE settings give theirs.
EXTENSIONS = {
    # The run lock and the run record, before every other component of ours.
    "archiver.state.extension.StateExtension": 10,
    # The DW stand-in, in-process (ARCHIVER_STANDIN) or running elsewhere (ARCHIVER_STANDIN_ADDRESS).
    "archiver.standin.extension.StandinExtension": 100,
    # The crawler's one WARC writer: rolling files, conversion records, recovery, CDXJ, check on close.
    "archiver.warc.extension.WarcWriterExtension": 200,
    # Page requisites (stylesheets, scripts, fonts, icons) of every archived page, so it replays styled.
    "archiver.fetch.requisites.RequisitesExtension": 210,
    "archiver.run.report.RunReport": 500,
    # Objects alive at spider_opened out of the garbage collector's walks.
    "archiver.tuning.gcfreeze.GcFreeze": 900,
    # Both run code or open a shell for whoever reaches the port.
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}
DOWNLOADER_MIDDLEWARES = {
    # Before everything else: nothing off the allowed hosts, whatever dont_filter says.
    "archiver.fetch.scope.ScopeMiddleware": 50,
    # robots.txt obeyed as Scrapy does; one error line instead of a traceback when it cannot be fetched.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "archiver.fetch.politeness.RobotsTxtMiddleware": 100,
    # Conditional rechecks before the capture, so the request record shows the validators as sent.
    "archiver.fetch.conditional.ConditionalRequestMiddleware": 540,
    # Retries that wait (Retry-After on 429/503, backoff otherwise) instead of hammering.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "archiver.fetch.politeness.WaitingRetryMiddleware": 550,
    # The WARC capture sees each response before it is decoded.
    "archiver.warc.middleware.WarcCaptureMiddleware": 950,
}
ITEM_PIPELINES = {"archiver.items.pipelines.SchemaCheckPipeline": 800}
COMPONENTS = {
    "EXTENSIONS": EXTENSIONS,
    "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
    "ITEM_PIPELINES": ITEM_PIPELINES,
}
SETTINGS = {
    # Per-host concurrency that holds for bursts; a freed slot sends its next request at once.
    "DOWNLOADER": "archiver.compat.Downloader",
    # Dedupe comes from the run plan and the state (by article id), so memory does not grow with history.
    "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
    # An item line that cannot be written is reported (archiver.signals.item_not_written), never counted done.
    "FEED_EXPORTERS": {"jsonlines": "archiver.items.exporter.JsonLinesItemExporter"},
    # Items reach the OS as soon as they are exported: the state counts an article done only once it is in the file.
    "FEED_STORAGES": {
        "file": "archiver.items.storage.UnbufferedFileFeedStorage",
        "": "archiver.items.storage.UnbufferedFileFeedStorage",
    },
}


class Archiver:
    """Installs archiver's extensions, middlewares, pipeline, downloader and item storage into a crawl's settings."""

    def update_settings(self, settings: BaseSettings) -> None:
        for name, components in COMPONENTS.items():
            for path, order in components.items():
                settings.setdefault_in_component_priority_dict(name, load_object(path), order)
        for name, value in SETTINGS.items():
            settings.set(name, value, priority="addon")
        if config.get(settings, "ARCHIVER_DECODE_ONCE"):
            # Scrapy's decoder in its place (590), taking the body the capture already decoded.
            for path, order in ((decodeonce.SCRAPY_DECODER, None), (decodeonce.DECODER, 590)):
                settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", load_object(path), order)
