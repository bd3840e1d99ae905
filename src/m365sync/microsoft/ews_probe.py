"""Does an on-premises Exchange server answer at an EWS address? Asked before an Exchange
service account or user connection is saved, so an address that can't be reached is
refused with its cause instead of sitting "pending" until the first sync.

Any HTTP answer counts as reachable (EWS answers an anonymous GET with 401 or 405); a
refused or timed-out connection, an unknown host or an untrusted certificate is
``ServerUnreachable``, and so is a 404 (a web server, but no EWS at that path).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import httpx

from m365sync.microsoft.errors import Transient

__all__ = ["ServerUnreachable", "probe_ews_server"]

PROBE_TIMEOUT_SECONDS = 10.0


class ServerUnreachable(Transient):
    """No answer from the server at all (refused, timed out, unknown host, untrusted
    certificate)."""

    status = 422


_CHECK_ADDRESS = (
    "Check the address (usually https://<your server>/EWS/Exchange.asmx) and that this "
    "machine can reach the server (DNS, firewall, VPN), then save again. Nothing was saved."
)


def probe_ews_server(url: str, *, verify: ssl.SSLContext | bool = True) -> None:
    """Return when the server at ``url`` answers over HTTPS; raise why not."""
    host = urlsplit(url).hostname or url
    try:
        with httpx.Client(verify=verify, timeout=PROBE_TIMEOUT_SECONDS) as http:
            response = http.get(url)
    except httpx.ConnectError as exc:
        if isinstance(exc.__context__ or exc.__cause__, ssl.SSLCertVerificationError) or (
            "CERTIFICATE_VERIFY_FAILED" in str(exc)
        ):
            raise ServerUnreachable(
                f"The Exchange server {host} answered, but its certificate is not trusted by "
                "this machine.",
                fix="Give m365sync your organization's certificate authority (the CA bundle "
                "setting, see docs/configuration.md), then save again. Nothing was saved.",
            ) from exc
        raise ServerUnreachable(
            f"The Exchange server {host} can't be reached: {_reason(exc)}.", fix=_CHECK_ADDRESS
        ) from exc
    except httpx.TimeoutException as exc:
        raise ServerUnreachable(
            f"The Exchange server {host} did not answer within {PROBE_TIMEOUT_SECONDS:.0f} "
            "seconds.",
            fix=_CHECK_ADDRESS,
        ) from exc
    except httpx.HTTPError as exc:
        raise ServerUnreachable(
            f"The Exchange server {host} can't be reached: {_reason(exc)}.", fix=_CHECK_ADDRESS
        ) from exc
    if response.status_code == 404:
        raise ServerUnreachable(
            f"{host} answered, but there is no Exchange Web Services at {url} (404).",
            fix="Use the server's EWS address, usually https://<your server>/EWS/Exchange.asmx. "
            "Nothing was saved.",
        )


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "the connection was refused (nothing listens at that address and port)"
    if any(words in text for words in ("name or service not known", "nodename", "getaddrinfo")):
        return "the name is unknown to DNS"
    return str(exc) or exc.__class__.__name__
