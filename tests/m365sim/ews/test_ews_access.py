"""Whose mailbox an EWS caller reaches: ApplicationImpersonation (whole organization or a
management scope), delegate FullAccess, and the errors Exchange answers otherwise."""

from __future__ import annotations

import httpx
import pytest
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorImpersonateUserDenied,
    ErrorNonExistentMailbox,
)

from support.ews_clients import TENANT, AccountFactory


def test_the_service_account_impersonates_any_mailbox(ews: AccountFactory) -> None:
    assert ews("diego@contoso.com", as_service=True).inbox.total_count == 42
    assert ews("lee@contoso.com", as_service=True).inbox.total_count == 0


def test_impersonation_without_the_role_is_denied(ews: AccountFactory) -> None:
    account = ews(
        "diego@contoso.com", as_service=True, username="lee@contoso.com", password="Demo-User-1!"
    )
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = account.inbox


def test_a_scoped_role_denies_mailboxes_outside_its_scope(
    ews: AccountFactory, control: httpx.Client
) -> None:
    control.post(
        f"/_sim/tenants/{TENANT}/managementScopes",
        json={"Name": "Sales", "RecipientRestrictionFilter": "Department -eq 'Sales'"},
    )
    control.patch(
        f"/_sim/tenants/{TENANT}/recipients/diego@contoso.com", json={"Department": "Sales"}
    )
    response = control.post(
        f"/_sim/tenants/{TENANT}/exchange/impersonation",
        json={"user": "grady@contoso.com", "customRecipientWriteScope": "Sales"},
    )
    assert response.status_code == 201, response.text
    as_grady = {"as_service": True, "username": "grady@contoso.com", "password": "Demo-User-1!"}
    assert ews("diego@contoso.com", **as_grady).inbox.total_count == 42
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = ews("adele@contoso.com", **as_grady).inbox


def test_impersonating_an_address_without_a_mailbox(ews: AccountFactory) -> None:
    with pytest.raises(ErrorNonExistentMailbox):
        _ = ews("nobody@contoso.com", as_service=True).inbox


def test_removing_the_role_takes_effect_at_once(ews: AccountFactory, control: httpx.Client) -> None:
    assert ews("diego@contoso.com", as_service=True).inbox.total_count == 42
    removed = control.delete(f"/_sim/tenants/{TENANT}/exchange/impersonation/admin@contoso.com")
    assert removed.status_code == 204
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = ews("adele@contoso.com", as_service=True).inbox


def test_another_users_mailbox_needs_full_access(
    ews: AccountFactory, control: httpx.Client
) -> None:
    lee_reading_diego = ews("diego@contoso.com", username="lee@contoso.com")
    with pytest.raises(ErrorAccessDenied):
        _ = lee_reading_diego.inbox
    control.post(
        f"/_sim/tenants/{TENANT}/mailboxPermissions",
        json={
            "Identity": "diego@contoso.com",
            "User": "lee@contoso.com",
            "AccessRights": "FullAccess",
        },
    )
    assert ews("diego@contoso.com", username="lee@contoso.com").inbox.total_count == 42


def test_a_hybrid_server_holds_only_on_premises_mailboxes(
    ews: AccountFactory, control: httpx.Client
) -> None:
    """In a hybrid organization, Olga's mailbox stayed on the Exchange Server while Diego's
    moved to Exchange Online: EWS reaches hers, and his answers ErrorNonExistentMailbox."""
    control.patch(f"/_sim/tenants/{TENANT}/exchange", json={"flavour": "hybrid"})
    assert ews("onprem@contoso.com", as_service=True).inbox.total_count == 0
    with pytest.raises(ErrorNonExistentMailbox):
        _ = ews("diego@contoso.com", as_service=True).inbox
