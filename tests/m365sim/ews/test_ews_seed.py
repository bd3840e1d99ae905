"""The ``exchange:`` seed section: a tenant's Exchange Server from a seed file."""

from __future__ import annotations

import pytest

from m365sim.ews.models import organization_for
from m365sim.seed import SeedError, load_seed
from m365sim.state import SimState


def tenant_spec(exchange: dict[str, object]) -> dict[str, object]:
    return {
        "tenants": [
            {
                "displayName": "Fabrikam",
                "domains": ["fabrikam.com"],
                "users": [
                    {"userPrincipalName": "svc-ews@fabrikam.com"},
                    {"userPrincipalName": "kim@fabrikam.com", "mailboxLocation": "onprem"},
                    {"userPrincipalName": "ana@fabrikam.com"},
                ],
                "exchange": exchange,
            }
        ]
    }


def test_a_seeded_hybrid_server_with_an_impersonation_account() -> None:
    state = SimState()
    (tenant,) = load_seed(
        state,
        tenant_spec(
            {
                "flavour": "hybrid",
                "version": "ExchangeSE",
                "roleAssignments": [{"user": "svc-ews@fabrikam.com"}],
            }
        ),
    )
    org = organization_for(state, tenant)
    assert org.as_json()["build"] == "15.2.2562.17"
    assert org.netbios_name == "FABRIKAM"
    service, kim, ana = (tenant.find_user(f"{n}@fabrikam.com") for n in ("svc-ews", "kim", "ana"))
    assert service and kim and ana
    assert org.hosts_mailbox(kim) and not org.hosts_mailbox(ana)
    assert org.may_impersonate(service, kim)
    assert not org.may_impersonate(kim, ana)


@pytest.mark.parametrize(
    ("exchange", "reason"),
    [
        ({"flavour": "exchange2003"}, "exchange.flavour is one of online, onpremises, hybrid"),
        ({"version": "Exchange2013"}, "exchange.version is one of"),
        ({"roleAssignments": [{"user": "nobody@fabrikam.com"}]}, "no user 'nobody@fabrikam.com'"),
        ({"authentication": ["kerberos"]}, "exchange.authentication lists one or more of"),
        ({"mailboxes": "all"}, "unknown settings mailboxes"),
    ],
)
def test_a_wrong_exchange_section_names_what_is_wrong(
    exchange: dict[str, object], reason: str
) -> None:
    with pytest.raises(SeedError, match="tenants\\[0\\]: ") as raised:
        load_seed(SimState(), tenant_spec(exchange))
    assert reason in str(raised.value)
