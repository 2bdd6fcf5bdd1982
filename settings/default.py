"""The embedded default profile: one machine, SQLite state, every file below ARCHIVER_OUTPUT_DIR."""

from archiver import __version__
from archiver.config import defaults

globals().update(defaults())

BOT_NAME = "archiver"
SPIDER_MODULES = ["archiver.spiders"]
NEWSPIDER_MODULE = "archiver.spiders"

# Politeness: a named agent, robots.txt obeyed, conservative per-host concurrency.
USER_AGENT = f"archiver/{__version__} (+{ARCHIVER_CONTACT})"  # noqa: F821 - set by defaults()
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024

# warcio cannot read br/zstd records and pywb replays zstd as garbage: ask for gzip and deflate only.
# DEFAULT_REQUEST_HEADERS replaces Scrapy's whole dict.
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
}

# 100 concurrent items per callback makes callbacks slow; a few suffice.
CONCURRENT_ITEMS = 8

# Both run code or open a shell for whoever reaches the port: off in every profile.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

ITEM_PIPELINES = {
    "archiver.items.pipelines.SchemaCheckPipeline": 800,
}
EXTENSIONS["archiver.run.report.RunReport"] = 500
# Startup objects out of the garbage collector's walks (archiver/tuning/gcfreeze.py).
EXTENSIONS["archiver.tuning.gcfreeze.GcFreeze"] = 900

# Dedupe comes from the run plan and the state (by article id), so memory does not grow with history.
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"

# Memory across runs (archiver.state.store): the run lock and the run record, before the other extensions.
EXTENSIONS["archiver.state.store.StateExtension"] = 10

# Per-host concurrency that holds when many requests to one host are queued at once, and a freed slot that sends its
# next request in the same turn of the event loop (archiver/fetch/downloader.py).
DOWNLOADER = "archiver.fetch.downloader.Downloader"

DOWNLOADER_MIDDLEWARES = {
    # Before everything else: nothing off the allowed hosts, whatever dont_filter says.
    "archiver.fetch.scope.ScopeMiddleware": 50,
    # Retries that wait (Retry-After on 429/503, backoff otherwise) instead of hammering.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "archiver.fetch.politeness.WaitingRetryMiddleware": 550,
    # robots.txt obeyed as Scrapy does; one error line instead of a traceback when it cannot be fetched.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "archiver.fetch.politeness.RobotsTxtMiddleware": 100,
}
RETRY_TIMES = 2

# Conditional rechecks (archiver.fetch.conditional) before the WARC capture (950): the request record shows
# If-None-Match / If-Modified-Since as sent.
DOWNLOADER_MIDDLEWARES["archiver.fetch.conditional.ConditionalRequestMiddleware"] = 540

# DW stand-in (archiver/standin, docs/standin.md): the resolver routes the DW hosts to a stand-in when
# ARCHIVER_STANDIN_ADDRESS is set or ARCHIVER_STANDIN=1 starts one in-process; other hosts resolve as usual.
TWISTED_DNS_RESOLVER = "archiver.standin.routing.StandinResolver"
EXTENSIONS["archiver.standin.extension.StandinExtension"] = 100

# WARC capture (archiver/warc): at 950 it sees each response before HttpCompressionMiddleware (590) decodes it;
# the extension is the crawler's one writer (rolling files, conversion records, recovery, CDXJ, check on close).
DOWNLOADER_MIDDLEWARES["archiver.warc.middleware.WarcCaptureMiddleware"] = 950
# Scrapy's decoder in the same place, taking the body the capture already decoded (one inflate per body).
DOWNLOADER_MIDDLEWARES["scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"] = None
DOWNLOADER_MIDDLEWARES["archiver.warc.middleware.HttpCompressionMiddleware"] = 590
EXTENSIONS["archiver.warc.extension.WarcWriterExtension"] = 200
# Page requisites (stylesheets, scripts, fonts, icons) of every archived page, so it replays styled.
EXTENSIONS["archiver.fetch.requisites.RequisitesExtension"] = 210

# Items are written unbuffered: the state counts an article done only once its item is in the file.
# Scrapy's JSON Lines exporter, converting a dataclass item in one call (archiver/items/exporter.py).
FEED_EXPORTERS = {"jsonlines": "archiver.items.exporter.JsonLinesItemExporter"}
FEED_STORAGES = {
    "file": "archiver.items.storage.UnbufferedFileFeedStorage",
    "": "archiver.items.storage.UnbufferedFileFeedStorage",
}
