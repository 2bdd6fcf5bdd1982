"""The crawl's resolver: no fetch reaches a private, loopback or link-local address, except by a fixed route.

Set `TWISTED_DNS_RESOLVER = "archiver.fetch.resolver.GuardedResolver"` (settings/default.py does). Names resolve
through Scrapy's caching resolver and only their public addresses are kept (unless
ARCHIVER_ALLOW_PRIVATE_ADDRESSES); a route added with `add_route` (the DW stand-in adds its own) answers a
(host, port) pair with a fixed address, so URLs, Host headers and TLS server names stay as they are.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scrapy.resolver import CachingHostnameResolver, HostResolution
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from archiver import config

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def is_public_address(host: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local, reserved...)."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@implementer(IResolutionReceiver)
class PublicOnlyReceiver:
    """Pass on only the public addresses of a resolution; log what was dropped."""

    def __init__(self, receiver: IResolutionReceiver, host: str, stats: Any = None) -> None:
        self.receiver = receiver
        self.host = host
        self.stats = stats
        self.dropped: list[str] = []

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        host = getattr(address, "host", "")
        if is_public_address(host):
            self.receiver.addressResolved(address)
        else:
            self.dropped.append(host)

    def resolutionComplete(self) -> None:
        if self.dropped:
            logger.warning("refused non-public addresses %s for host %s", self.dropped, self.host)
            if self.stats is not None:
                self.stats.inc_value("archiver/netguard/refused", len(self.dropped))
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class GuardedResolver(CachingHostnameResolver):
    """Scrapy's caching hostname resolver that keeps public addresses only, plus fixed routes for (host, port)."""

    def __init__(self, reactor: Any, cache_size: int, *, public_only: bool = True) -> None:
        super().__init__(reactor, cache_size)
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}
        self.public_only = public_only

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.public_only = not config.get(crawler.settings, "ARCHIVER_ALLOW_PRIVATE_ADDRESSES")
        return resolver

    def add_route(self, hostname: str, port: int, to_host: str, to_port: int) -> None:
        """Answer (hostname, port) with (to_host, to_port) from now on."""
        self.routes[(hostname.lower(), port)] = (to_host, to_port)

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
