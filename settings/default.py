"""The embedded default profile: one machine, SQLite state, every file below ARCHIVER_OUTPUT_DIR."""

from archiver import __version__
from archiver.config import setting_default

BOT_NAME = "archiver"
SPIDER_MODULES = ["archiver.spiders"]
NEWSPIDER_MODULE = "archiver.spiders"

# archiver's components (archiver/addon.py); every ARCHIVER_* setting has its default in archiver/config.py.
ADDONS = {"archiver.addon.Archiver": 0}

# Politeness: a named agent, robots.txt obeyed, conservative per-host concurrency.
USER_AGENT = f"archiver/{__version__} (+{setting_default('ARCHIVER_CONTACT')})"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024
RETRY_TIMES = 2

# warcio cannot read br/zstd records and pywb replays zstd as garbage: ask for gzip and deflate only.
# DEFAULT_REQUEST_HEADERS replaces Scrapy's whole dict.
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
}

# Under asyncio Scrapy starts CONCURRENT_ITEMS tasks for every callback's output; ours yield a few items each,
# so a few tasks suffice (docs/tuning.md).
CONCURRENT_ITEMS = 8

# Both run code or open a shell for whoever reaches the port: off in every profile, with or without the add-on.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

# Read by Scrapy before add-ons load, so it is set here: public addresses only, plus the routes the DW stand-in
# adds (archiver/fetch/resolver.py).
TWISTED_DNS_RESOLVER = "archiver.fetch.resolver.GuardedResolver"
