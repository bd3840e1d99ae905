"""How exchangelib reaches an Exchange server: TLS trust from the product's settings.

exchangelib sends through ``requests`` sessions it builds itself, and requests trusts what
``REQUESTS_CA_BUNDLE`` names (or certifi), never m365sync's ``ca_bundle`` setting. The
supported hook is a protocol's ``HTTP_ADAPTER_CLS``: each trust setting gets its own
``Protocol`` subclass whose adapter sends with that ``verify``. Nothing global changes:
exchangelib's own ``Protocol`` (and any other user of it in the process) keeps its adapter,
and our protocols are cached under keys of their own, so two trust settings never share a
session.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import requests
from exchangelib import Configuration
from exchangelib.autodiscover import AutodiscoverProtocol
from exchangelib.protocol import Protocol

REQUEST_TIMEOUT_SECONDS = 60


class TrustingAdapter(requests.adapters.HTTPAdapter):
    """Sends every request with ``verify`` (a CA bundle path, or True for the system's),
    whatever requests derived from the environment."""

    verify: ClassVar[str | bool] = True

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request, stream=stream, timeout=timeout, verify=self.verify, cert=cert, proxies=proxies
        )


@functools.cache
def adapter_class(verify: str | bool) -> type[TrustingAdapter]:
    return type("TrustingAdapter", (TrustingAdapter,), {"verify": verify})


@functools.cache
def protocol_class(verify: str | bool) -> type[Protocol]:
    """exchangelib's ``Protocol`` trusting ``verify``; instances are cached (and their
    sessions pooled) per (trust, endpoint, credentials)."""

    def cache_key(config: Configuration) -> tuple[Any, ...]:
        return ("m365sync", verify, config.service_endpoint, config.credentials)

    namespace = {
        "HTTP_ADAPTER_CLS": adapter_class(verify),
        "TIMEOUT": REQUEST_TIMEOUT_SECONDS,
        "_cache_key": staticmethod(cache_key),
    }
    return type("TrustingProtocol", (Protocol,), namespace)


@functools.cache
def autodiscover_protocol_class(verify: str | bool) -> type[AutodiscoverProtocol]:
    namespace = {"HTTP_ADAPTER_CLS": adapter_class(verify), "TIMEOUT": REQUEST_TIMEOUT_SECONDS}
    return type("TrustingAutodiscoverProtocol", (AutodiscoverProtocol,), namespace)


def plain_session(verify: str | bool) -> requests.Session:
    """A requests session with the same trust, for the anonymous probe of Run Test."""
    session = requests.Session()
    session.mount("https://", adapter_class(verify)(max_retries=0))
    session.mount("http://", adapter_class(verify)(max_retries=0))
    return session
