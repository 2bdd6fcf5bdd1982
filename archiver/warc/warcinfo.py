"""The warcinfo record's fields: the software that really wrote the records, the format, the operator and the
settings that shaped what was captured."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

import scrapy
from scrapy.settings import BaseSettings

from archiver.config import get
from archiver.warc.records import WRITER_SOFTWARE
from archiver.warc.writer import safe_hostname

CONFORMS_TO = {
    "1.0": "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf",
    "1.1": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
}
# Scrapy settings that shape what was captured, recorded in every warcinfo.
WARCINFO_SETTINGS = (
    "ROBOTSTXT_OBEY",
    "USER_AGENT",
    "DEFAULT_REQUEST_HEADERS",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_MAXSIZE",
    "DOWNLOAD_FAIL_ON_DATALOSS",
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED",
    "REDIRECT_ENABLED",
    "RETRY_TIMES",
    "COOKIES_ENABLED",
    "ARCHIVER_ALLOWED_HOSTS",
    "ARCHIVER_REFS_DEPTH",
    "ARCHIVER_MEDIA",
    "ARCHIVER_WARC_VERSION",
    "ARCHIVER_WARC_MAX_SIZE",
    "ARCHIVER_WARC_GZIP_LEVEL",
)


def _dist_version(name: str) -> str:
    try:
        return dist_version(name)
    except PackageNotFoundError:
        return "unknown"


def warcinfo_fields(s: BaseSettings, version: str, spider_name: str | None) -> list[tuple[str, object]]:
    """The fields of every warcinfo record a crawl writes, in order."""
    software = (
        f"{WRITER_SOFTWARE} Scrapy/{scrapy.__version__} Twisted/{_dist_version('twisted')} "
        f"Python/{platform.python_version()}"
    )
    fields: list[tuple[str, object]] = [
        ("software", software),
        ("format", f"WARC File Format {version}"),
        ("conformsTo", CONFORMS_TO[version]),
        ("hostname", safe_hostname()),
        ("operator", get(s, "ARCHIVER_WARC_OPERATOR")),
        ("contact", get(s, "ARCHIVER_CONTACT")),
        ("isPartOf", get(s, "ARCHIVER_RUN_ID") or spider_name),
        ("robots", "obey" if s.getbool("ROBOTSTXT_OBEY") else "ignore"),
        ("http-header-user-agent", s.get("USER_AGENT")),
    ]
    for name in WARCINFO_SETTINGS:
        value = s.get(name)
        if isinstance(value, BaseSettings):
            value = value.copy_to_dict()
        if isinstance(value, dict | list | tuple):
            value = repr(dict(value) if isinstance(value, dict) else list(value))
        fields.append(("setting", f"{name}={value}"))
    return fields
