"""Send the DW hosts to the stand-in without touching URLs: routes added to the crawl's guarded resolver.

The stand-in only adds routes (`archiver.fetch.resolver.GuardedResolver.add_route`): (DW host, 443) and
(DW host, 80) answer with the stand-in's address; every other name resolves as in production. In the project
the stand-in extension adds them; a crawl outside it (`scrapy runspider` with no project settings) sets
`TWISTED_DNS_RESOLVER = "archiver.standin.routing.StandinResolver"`, which adds them from
`ARCHIVER_STANDIN_ADDRESS` when it is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archiver import config
from archiver.config import DW_HOSTS
from archiver.fetch.resolver import GuardedResolver

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def parse_address(value: str) -> tuple[str, int, int | None]:
    """`host:https_port[,http_port]` -> (host, https_port, http_port or None)."""
    host, _, ports = value.strip().rpartition(":")
    https, _, http = ports.partition(",")
    if not host or not https.isdigit() or (http and not http.isdigit()):
        raise ValueError(f"ARCHIVER_STANDIN_ADDRESS must be host:https_port[,http_port], not {value!r}")
    return host.strip("[]"), int(https), int(http) if http else None


def route_dw(resolver: Any, host: str, https_port: int, http_port: int | None = None) -> None:
    """Route the three DW hosts on `resolver`: 443 to `https_port`, 80 to `http_port` (if given)."""
    for name in DW_HOSTS:
        resolver.add_route(name, 443, host, https_port)
        if http_port is not None:
            resolver.add_route(name, 80, host, http_port)


class StandinResolver(GuardedResolver):
    """The guarded resolver with the DW hosts routed to `ARCHIVER_STANDIN_ADDRESS` from the start."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        address = config.get(crawler.settings, "ARCHIVER_STANDIN_ADDRESS")
        if address:
            route_dw(resolver, *parse_address(address))
        return resolver
