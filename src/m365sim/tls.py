"""m365sim's own certificate authority.

MSAL accepts only ``https`` authorities, so m365sim serves TLS with a certificate issued
by a CA it creates (``trustme``) and keeps in its data directory, so a restarted server
is trusted by the same bundle. Two files are written there:

- ``ca.pem``: m365sim's CA alone (for clients that take an extra CA, e.g. httpx ``verify``);
- ``ca-bundle.pem``: the system's CAs plus m365sim's, for ``REQUESTS_CA_BUNDLE`` /
  ``SSL_CERT_FILE``, which override a client's own ``verify=`` on many machines.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path
    ca_bundle: Path
    cert_chain: Path
    private_key: Path


def system_ca_file() -> Path | None:
    for candidate in (
        os.environ.get("SSL_CERT_FILE"),
        ssl.get_default_verify_paths().cafile,
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi

        return Path(certifi.where())
    except ImportError:  # pragma: no cover - certifi ships with requests/httpx
        return None


def prepare_tls(data_dir: Path) -> TlsFiles:
    """Load (or create) the CA in ``data_dir`` and issue a fresh server certificate."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = data_dir / "ca.pem", data_dir / "ca-key.pem"
    if ca_cert.is_file() and ca_key.is_file():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="m365sim local test CA")
        ca_cert.write_bytes(ca.cert_pem.bytes())
        ca_key.touch(mode=0o600)
        ca_key.write_bytes(ca.private_key_pem.bytes())
    server = ca.issue_cert(*SERVER_NAMES)
    chain, key = data_dir / "server.pem", data_dir / "server-key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    key.touch(mode=0o600)
    key.write_bytes(server.private_key_pem.bytes())

    bundle = data_dir / "ca-bundle.pem"
    system = system_ca_file()
    system_pems = system.read_bytes() if system and system.resolve() != bundle.resolve() else b""
    bundle.write_bytes(system_pems.rstrip(b"\n") + b"\n" + ca_cert.read_bytes())
    return TlsFiles(ca_pem=ca_cert, ca_bundle=bundle, cert_chain=chain, private_key=key)
