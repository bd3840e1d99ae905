"""DNS TXT lookups, for domain verification (the only code here that asks DNS anything).

dnspython is imported by the first lookup, not with this module: every command that loads
the organizations service (``m365sync sync`` among them) would otherwise pay for it.
"""

from __future__ import annotations

from collections.abc import Callable

from m365sync.organizations.errors import DnsUnavailable

TxtLookup = Callable[[str], list[str]]
"""``lookup(name)``: the TXT strings published at ``name`` (empty when there are none)."""

_LIFETIME_SECONDS = 8.0


def lookup_txt(name: str) -> list[str]:
    """The TXT records at ``name``, through the system's resolvers (each record's character
    strings joined, as DNS providers split long values into several)."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=_LIFETIME_SECONDS, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(
            f"DNS did not answer for {name} ({type(exc).__name__}).",
            fix="Check that this server can reach a DNS resolver, then verify again.",
        ) from exc
    records: list[str] = []
    for record in answer:
        strings = getattr(record, "strings", ())
        records.append(b"".join(strings).decode("utf-8", "replace"))
    return records
