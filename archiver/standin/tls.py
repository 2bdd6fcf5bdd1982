"""TLS for the stand-in: a throwaway trustme CA and one certificate for the three DW host names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twisted.internet import ssl

from archiver.config import DW_HOSTS


@dataclass(frozen=True)
class StandinTLS:
    """The CA (its PEM written to `ca_cert_path`) and the server's Twisted context factory."""

    ca_cert_path: Path
    context_factory: ssl.CertificateOptions


def make_tls(directory: Path) -> StandinTLS:
    """A new CA and a certificate for www/api/static.dw.com; the CA PEM goes to `directory/ca.pem`."""
    try:
        import trustme
    except ImportError as exc:
        raise RuntimeError("the DW stand-in needs the `standin` extra: pip install 'archiver[standin]'") from exc
    ca = trustme.CA(organization_name="archiver DW stand-in")
    leaf = ca.issue_cert(*DW_HOSTS)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    pem = leaf.private_key_pem.bytes() + b"".join(c.bytes() for c in leaf.cert_chain_pems)
    options = ssl.PrivateCertificate.loadPEM(pem).options()
    return StandinTLS(ca_path, options)
