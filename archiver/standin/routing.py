"""Send the DW hosts to the stand-in without touching URLs: a Twisted IHostnameResolver for Scrapy.

Set `TWISTED_DNS_RESOLVER = "archiver.standin.routing.StandinResolver"`. With `ARCHIVER_STANDIN_ADDRESS`
(`127.0.0.1:HTTPS_PORT,HTTP_PORT`) it answers (DW host, 443) and (DW host, 80) with the stand-in's
address; every other name goes to Scrapy's caching resolver, and only its public addresses are kept
(unless ARCHIVER_ALLOW_PRIVATE_ADDRESSES). URLs, Host header and SNI stay DW's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scrapy.resolver import CachingHostnameResolver, HostResolution
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from archiver import config
from archiver.config import DW_HOSTS
from archiver.fetch.resolver import PublicOnlyReceiver

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def parse_address(value: str) -> tuple[str, int, int | None]:
    """`host:https_port[,http_port]` -> (host, https_port, http_port or None)."""
    host, _, ports = value.strip().rpartition(":")
    https, _, http = ports.partition(",")
    if not host or not https.isdigit() or (http and not http.isdigit()):
        raise ValueError(f"ARCHIVER_STANDIN_ADDRESS must be host:https_port[,http_port], not {value!r}")
    return host.strip("[]"), int(https), int(http) if http else None


@implementer(IHostnameResolver)
class StandinResolver(CachingHostnameResolver):
    """Scrapy's caching hostname resolver plus fixed routes for (host, port) pairs."""

    def __init__(self, reactor: Any, cache_size: int, *, public_only: bool = True) -> None:
        super().__init__(reactor, cache_size)
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}
        self.public_only = public_only

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> StandinResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.public_only = not config.get(crawler.settings, "ARCHIVER_ALLOW_PRIVATE_ADDRESSES")
        address = config.get(crawler.settings, "ARCHIVER_STANDIN_ADDRESS")
        if address:
            host, https_port, http_port = parse_address(address)
            resolver.route_dw(host, https_port, http_port)
        return resolver

    def add_route(self, hostname: str, port: int, to_host: str, to_port: int) -> None:
        """Answer (hostname, port) with (to_host, to_port) from now on."""
        self.routes[(hostname.lower(), port)] = (to_host, to_port)

    def route_dw(self, host: str, https_port: int, http_port: int | None = None) -> None:
        """Route the three DW hosts: 443 to `https_port`, 80 to `http_port` (if given)."""
        for name in DW_HOSTS:
            self.add_route(name, 443, host, https_port)
            if http_port is not None:
                self.add_route(name, 80, host, http_port)

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        route = self.routes.get((hostName.lower().rstrip("."), portNumber))
        if route is None:  # a real name: only public addresses (no dump may aim at an internal host)
            if self.public_only:
                resolutionReceiver = PublicOnlyReceiver(resolutionReceiver, hostName)
            return super().resolveHostName(resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics)
        host, port = route
        resolution = HostResolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        address_type = IPv6Address if ":" in host else IPv4Address
        resolutionReceiver.addressResolved(address_type("TCP", host, port))
        resolutionReceiver.resolutionComplete()
        return resolution
