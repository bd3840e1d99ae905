"""Email address normalisation shared by the CRM store and the sync engine."""

from __future__ import annotations

import contextlib
from functools import lru_cache

__all__ = ["address_domain", "normalize_address"]


@lru_cache(maxsize=65536)
def normalize_address(address: str | None) -> str | None:
    """Lower-case ``local@domain`` with an ASCII (IDNA) domain; None when not an address.

    Internationalised domains are compared in their ``xn--`` form, so ``Ä@bücher.de`` and
    ``ä@xn--bcher-kva.de`` are the same person.
    """
    if not address:
        return None
    text = address.strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or " " in text:
        return None
    domain = domain.rstrip(".").lower()
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local.lower()}@{domain}"


def address_domain(address: str) -> str:
    return address.rpartition("@")[2]
