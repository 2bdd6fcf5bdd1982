"""Non-public addresses are refused at name resolution."""

import socket

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IResolutionReceiver
from zope.interface import implementer

from archiver.fetch.resolver import PublicOnlyReceiver, is_public_address


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::6810:85e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("224.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_is_public_address(host, public):
    assert is_public_address(host) is public


@implementer(IResolutionReceiver)
class Collect:
    def __init__(self):
        self.addresses, self.done = [], False

    def resolutionBegan(self, resolution):
        pass

    def addressResolved(self, address):
        self.addresses.append(address.host)

    def resolutionComplete(self):
        self.done = True


def test_system_resolution_of_localhost_is_emptied():
    """Feed what the system resolver says of `localhost` through the guard: nothing is left."""
    collect = Collect()
    guard = PublicOnlyReceiver(collect, "localhost")
    for family, _, _, _, sockaddr in socket.getaddrinfo("localhost", 443, proto=socket.IPPROTO_TCP):
        cls = IPv4Address if family == socket.AF_INET else IPv6Address
        guard.addressResolved(cls("TCP", sockaddr[0], 443))
    guard.resolutionComplete()
    assert collect.done
    assert collect.addresses == []
    assert guard.dropped


def test_public_addresses_pass_through():
    collect = Collect()
    guard = PublicOnlyReceiver(collect, "www.dw.com")
    guard.addressResolved(IPv4Address("TCP", "93.184.216.34", 443))
    guard.addressResolved(IPv4Address("TCP", "10.0.0.5", 443))
    guard.resolutionComplete()
    assert collect.addresses == ["93.184.216.34"]
    assert guard.dropped == ["10.0.0.5"]
    assert collect.done
