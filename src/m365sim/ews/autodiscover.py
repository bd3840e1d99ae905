"""Autodiscover as an Exchange Server answers it: POX (``/autodiscover/autodiscover.xml``)
and SOAP (``/autodiscover/autodiscover.svc``, ``GetUserSettings``).

Both need the same authentication as EWS (``m365sim.ews.auth``). For an address whose
mailbox is on the tenant's Exchange Server they answer the settings that matter to an EWS
client: the EWS URL (this simulator's ``/EWS/Exchange.asmx``), the display name, the
legacy DN and the supported schemas. An address with no mailbox answers as Exchange does
(POX ``ErrorCode`` 500 "The e-mail address cannot be found."; SOAP ``InvalidUser``); the
cloud mailbox of a hybrid organization answers with a redirect to its
``<alias>@<tenant>.mail.onmicrosoft.com`` target address, as the on-premises server
redirects to Exchange Online.

Differences from Exchange: only the EWS-related settings have values (the others are
reported as ``SettingIsNotAvailable``, which clients ignore); no Outlook Anywhere /
MAPI-over-HTTP settings beyond the URLs; no unauthenticated redirect (``GET`` on
``http://autodiscover.<domain>``) and no DNS SRV records.
"""

from __future__ import annotations

import uuid
from typing import Any

from m365sim.directory.models import Tenant, User
from m365sim.ews.models import ExchangeOrganization
from m365sim.ews.soap import (
    AUTODISCOVER,
    SOAP,
    WSA,
    XSI,
    child,
    children,
    element,
    qname,
    sub,
    text_of,
)

__all__ = ["pox_response", "soap_user_settings"]

POX_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
POX_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
SUPPORTED_SCHEMAS = (
    "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, "
    "Exchange2013, Exchange2013_SP1, Exchange2015, Exchange2016"
)


def ews_url(base_url: str) -> str:
    return f"{base_url}/EWS/Exchange.asmx"


def legacy_dn(org: ExchangeOrganization, user: User) -> str:
    alias = user.user_principal_name.split("@")[0]
    return (
        f"/o={org.tenant.display_name}/ou=Exchange Administrative Group "
        f"(FYDIBOHF23SPDLT)/cn=Recipients/cn={alias}"
    )


def server_version_hex(org: ExchangeOrganization) -> str:
    major, minor, build, _ = org.build
    value = (0b0111 << 28) | (major << 22) | (minor << 16) | (1 << 15) | (build & 0x7FFF)
    return f"{value:08X}"


def deployment_id(tenant: Tenant) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"m365sim:{tenant.id}"))


def redirect_address(tenant: Tenant, user: User) -> str:
    """The Exchange Online target address of a hybrid organization's cloud mailbox."""
    initial = next((d for d in tenant.domains if d.endswith(".onmicrosoft.com")), None)
    routing = (initial or f"{tenant.domains[0].split('.')[0]}.onmicrosoft.com").replace(
        ".onmicrosoft.com", ".mail.onmicrosoft.com"
    )
    return f"{user.user_principal_name.split('@')[0]}@{routing}"


# -- POX ---------------------------------------------------------------------------------------


def pox_requested_address(root: Any) -> str:
    request = child(root, qname(POX_REQUEST, "Request"))
    return text_of(request, qname(POX_REQUEST, "EMailAddress"), "") or ""


def pox_response(org: ExchangeOrganization, base_url: str, address: str) -> Any:
    """The POX answer for ``address`` in ``org``'s tenant."""
    root = element(qname(POX_RESPONSE, "Autodiscover"), nsmap={None: POX_RESPONSE})
    user = org.tenant.find_user(address) if address else None
    if user is None or not (org.hosts_mailbox(user) or org.flavour == "hybrid"):
        response = sub(root, qname(POX_RESPONSE, "Response"))
        error = sub(
            response, qname(POX_RESPONSE, "Error"), Time="00:00:00.0000000", Id="2477272013"
        )
        sub(error, qname(POX_RESPONSE, "ErrorCode"), 500)
        sub(error, qname(POX_RESPONSE, "Message"), "The e-mail address cannot be found.")
        sub(error, qname(POX_RESPONSE, "DebugData"))
        return root
    response = etree_sub_default(root, POX_OUTLOOK, "Response")
    if not org.hosts_mailbox(user):
        account = sub(response, qname(POX_OUTLOOK, "Account"))
        sub(account, qname(POX_OUTLOOK, "AccountType"), "email")
        sub(account, qname(POX_OUTLOOK, "Action"), "redirectAddr")
        sub(account, qname(POX_OUTLOOK, "RedirectAddr"), redirect_address(org.tenant, user))
        return root
    user_node = sub(response, qname(POX_OUTLOOK, "User"))
    sub(user_node, qname(POX_OUTLOOK, "DisplayName"), user.display_name)
    sub(user_node, qname(POX_OUTLOOK, "LegacyDN"), legacy_dn(org, user))
    sub(user_node, qname(POX_OUTLOOK, "AutoDiscoverSMTPAddress"), user.address)
    sub(user_node, qname(POX_OUTLOOK, "DeploymentId"), deployment_id(org.tenant))
    account = sub(response, qname(POX_OUTLOOK, "Account"))
    sub(account, qname(POX_OUTLOOK, "AccountType"), "email")
    sub(account, qname(POX_OUTLOOK, "Action"), "settings")
    sub(account, qname(POX_OUTLOOK, "MicrosoftOnline"), "False")
    url = ews_url(base_url)
    for kind in ("EXCH", "EXPR"):
        protocol = sub(account, qname(POX_OUTLOOK, "Protocol"))
        sub(protocol, qname(POX_OUTLOOK, "Type"), kind)
        sub(protocol, qname(POX_OUTLOOK, "Server"), f"mail.{org.tenant.domains[0]}")
        if kind == "EXCH":
            sub(protocol, qname(POX_OUTLOOK, "ServerVersion"), server_version_hex(org))
        sub(protocol, qname(POX_OUTLOOK, "ASUrl"), f"{base_url}/EWS/Exchange.asmx")
        sub(protocol, qname(POX_OUTLOOK, "EwsUrl"), url)
        sub(protocol, qname(POX_OUTLOOK, "EmwsUrl"), url)
        sub(protocol, qname(POX_OUTLOOK, "OOFUrl"), url)
        sub(protocol, qname(POX_OUTLOOK, "UMUrl"), f"{base_url}/EWS/UM2007Legacy.asmx")
    return root


def etree_sub_default(parent: Any, namespace: str, name: str) -> Any:
    from lxml import etree

    return etree.SubElement(parent, qname(namespace, name), nsmap={None: namespace})


# -- SOAP (GetUserSettings) ----------------------------------------------------------------------


def _setting_values(org: ExchangeOrganization, base_url: str, user: User) -> dict[str, str]:
    url = ews_url(base_url)
    major, minor, build, revision = org.build
    return {
        "UserDisplayName": user.display_name,
        "UserDN": legacy_dn(org, user),
        "UserDeploymentId": deployment_id(org.tenant),
        "InternalEwsUrl": url,
        "ExternalEwsUrl": url,
        "InternalMailboxServer": f"exch01.{org.tenant.domains[0]}",
        "ExternalMailboxServer": f"mail.{org.tenant.domains[0]}",
        "AutoDiscoverSMTPAddress": user.address,
        "CasVersion": f"{major}.{minor:02d}.{build:04d}.{revision:03d}",
        "EwsSupportedSchemas": SUPPORTED_SCHEMAS,
        "ExternalEwsVersion": f"{major}.{minor:02d}.{build:04d}.{revision:03d}",
        "MailboxDN": legacy_dn(org, user) + "/cn=Mailbox",
        "UserMSOnline": "False",
    }


def requested_users_and_settings(body_root: Any) -> tuple[list[str], list[str]]:
    body = child(body_root, qname(SOAP, "Body"))
    message = child(body, qname(AUTODISCOVER, "GetUserSettingsRequestMessage"))
    request = child(message, qname(AUTODISCOVER, "Request"))
    users = [
        text_of(u, qname(AUTODISCOVER, "Mailbox"), "") or ""
        for u in children(child(request, qname(AUTODISCOVER, "Users")), qname(AUTODISCOVER, "User"))
    ]
    settings = [
        s.text or ""
        for s in children(
            child(request, qname(AUTODISCOVER, "RequestedSettings")), qname(AUTODISCOVER, "Setting")
        )
    ]
    return users, settings


def soap_user_settings(
    org: ExchangeOrganization, base_url: str, users: list[str], settings: list[str]
) -> Any:
    """The SOAP envelope answering ``GetUserSettings`` for ``users``."""
    envelope = element(qname(SOAP, "Envelope"), nsmap={"s": SOAP, "a": WSA})
    header = sub(envelope, qname(SOAP, "Header"))
    action = sub(
        header,
        qname(WSA, "Action"),
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"
        "GetUserSettingsResponse",
    )
    action.set(qname(SOAP, "mustUnderstand"), "1")
    from lxml import etree

    info = etree.SubElement(
        header, qname(AUTODISCOVER, "ServerVersionInfo"), nsmap={"h": AUTODISCOVER, "i": XSI}
    )
    major, minor, build, revision = org.build
    for name, value in (
        ("MajorVersion", major),
        ("MinorVersion", minor),
        ("MajorBuildNumber", build),
        ("MinorBuildNumber", revision),
        ("Version", "Exchange2015"),
    ):
        sub(info, qname(AUTODISCOVER, name), value)
    body = sub(envelope, qname(SOAP, "Body"))
    message = etree.SubElement(
        body, qname(AUTODISCOVER, "GetUserSettingsResponseMessage"), nsmap={None: AUTODISCOVER}
    )
    response = etree.SubElement(message, qname(AUTODISCOVER, "Response"), nsmap={"i": XSI})
    sub(response, qname(AUTODISCOVER, "ErrorCode"), "NoError")
    sub(response, qname(AUTODISCOVER, "ErrorMessage"))
    holder = sub(response, qname(AUTODISCOVER, "UserResponses"))
    for address in users:
        _user_response(holder, org, base_url, address, settings)
    return envelope


def _user_response(
    holder: Any, org: ExchangeOrganization, base_url: str, address: str, settings: list[str]
) -> None:
    node = sub(holder, qname(AUTODISCOVER, "UserResponse"))
    user = org.tenant.find_user(address)
    if user is None or not (org.hosts_mailbox(user) or org.flavour == "hybrid"):
        sub(node, qname(AUTODISCOVER, "ErrorCode"), "InvalidUser")
        sub(node, qname(AUTODISCOVER, "ErrorMessage"), f"Invalid user: '{address}'")
        _nil(sub(node, qname(AUTODISCOVER, "RedirectTarget")))
        sub(node, qname(AUTODISCOVER, "UserSettingErrors"))
        sub(node, qname(AUTODISCOVER, "UserSettings"))
        return
    if not org.hosts_mailbox(user):
        sub(node, qname(AUTODISCOVER, "ErrorCode"), "RedirectAddress")
        sub(node, qname(AUTODISCOVER, "ErrorMessage"), "Redirection address.")
        sub(node, qname(AUTODISCOVER, "RedirectTarget"), redirect_address(org.tenant, user))
        sub(node, qname(AUTODISCOVER, "UserSettingErrors"))
        sub(node, qname(AUTODISCOVER, "UserSettings"))
        return
    values = _setting_values(org, base_url, user)
    sub(node, qname(AUTODISCOVER, "ErrorCode"), "NoError")
    sub(node, qname(AUTODISCOVER, "ErrorMessage"), "No error.")
    _nil(sub(node, qname(AUTODISCOVER, "RedirectTarget")))
    errors_el = sub(node, qname(AUTODISCOVER, "UserSettingErrors"))
    settings_el = sub(node, qname(AUTODISCOVER, "UserSettings"))
    for name in settings:
        if name in values:
            setting = sub(settings_el, qname(AUTODISCOVER, "UserSetting"))
            setting.set(qname(XSI, "type"), "StringSetting")
            sub(setting, qname(AUTODISCOVER, "Name"), name)
            sub(setting, qname(AUTODISCOVER, "Value"), values[name])
        else:
            error = sub(errors_el, qname(AUTODISCOVER, "UserSettingError"))
            sub(error, qname(AUTODISCOVER, "ErrorCode"), "SettingIsNotAvailable")
            sub(
                error,
                qname(AUTODISCOVER, "ErrorMessage"),
                f"User setting '{name}' is not available.",
            )
            sub(error, qname(AUTODISCOVER, "SettingName"), name)


def _nil(node: Any) -> None:
    node.set(qname(XSI, "nil"), "true")
