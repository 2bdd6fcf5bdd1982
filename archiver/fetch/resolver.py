"""No fetch reaches a private, loopback or link-local address: the resolver drops such answers."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from zope.interface import implementer

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
