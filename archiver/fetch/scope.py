"""Only the allowed hosts, over http or https, are ever fetched, whatever a dump or a redirect says."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

from archiver import config

SCHEMES = frozenset({"http", "https"})


def out_of_scope(url_scheme: str, host: str | None, allowed: frozenset[str]) -> str | None:
    """Why a URL must not be fetched, or None when it may."""
    if url_scheme not in SCHEMES:
        return f"scheme {url_scheme or '(none)'!r} not allowed"
    if not host or host.lower().rstrip(".") not in allowed:
        return f"host {host!r} not allowed"
    return None


class ScopeMiddleware:
    """Refuse every request off ARCHIVER_ALLOWED_HOSTS; unlike OffsiteMiddleware, `dont_filter` changes nothing."""

    def __init__(self, allowed: frozenset[str], stats: Any) -> None:
        self.allowed = allowed
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> ScopeMiddleware:
        hosts = frozenset(h.lower() for h in config.get_list(crawler.settings, "ARCHIVER_ALLOWED_HOSTS"))
        return cls(hosts, crawler.stats)

    def process_request(self, request: Request) -> None:
        parsed = urlparse_cached(request)
        reason = out_of_scope(parsed.scheme, parsed.hostname, self.allowed)
        if reason:
            self.stats.inc_value("archiver/scope/refused")
            via = request.meta.get("redirect_urls")
            if via:  # the server sent us off the list: its answer, not the dump's URL, so worth a retry
                raise IgnoreRequest(f"redirect off-site: {reason}: {request.url} (from {via[-1]})")
            raise IgnoreRequest(f"out of scope: {reason}: {request.url}")
