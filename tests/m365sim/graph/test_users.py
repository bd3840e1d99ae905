"""Graph users: /me, /users/{id|upn}, /users with paging, mailboxSettings, permissions."""

from __future__ import annotations

from m365sim.directory.models import Tenant
from support.sim_tokens import GraphFactory


def test_me_needs_a_delegated_token(graph: GraphFactory) -> None:
    me = graph(user="adele@contoso.com", scopes=["User.Read"]).get("/me")
    assert me.status_code == 200
    assert (
        me.json()["userPrincipalName"] == "adele@contoso.com"
        and me.json()["displayName"] == "Adele Vance"
    )
    app = graph(roles=["User.Read.All"]).get("/me")
    assert app.status_code == 400
    assert graph(user="adele@contoso.com", scopes=["Mail.Read"]).get("/me").status_code == 403


def test_get_user_by_id_or_upn_and_select(graph: GraphFactory, demo_tenant: Tenant) -> None:
    client = graph(roles=["User.Read.All"])
    alex = demo_tenant.find_user("alex@contoso.com")
    by_id = client.get(f"/users/{alex.id}").json()
    assert by_id["userPrincipalName"] == "alex@contoso.com"
    selected = client.get("/users/alex@contoso.com", params={"$select": "id,mail"}).json()
    assert set(selected) == {"@odata.context", "id", "mail"}
    missing = client.get("/users/nobody@contoso.com")
    assert (
        missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    )
    bad_select = client.get("/users/alex@contoso.com", params={"$select": "shoeSize"})
    assert bad_select.status_code == 400 and "shoeSize" in bad_select.json()["error"]["message"]


def test_list_users_needs_user_read_all(graph: GraphFactory) -> None:
    denied = graph(roles=["Mail.Read"]).get("/users")
    assert (
        denied.status_code == 403
        and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    )
    client = graph(roles=["User.Read.All"])
    upns: list[str] = []
    url: str | None = "/users?$top=5&$select=userPrincipalName,mail"
    while url:
        body = client.get(url).json()
        upns += [u["userPrincipalName"] for u in body["value"]]
        url = body.get("@odata.nextLink")
    assert len(upns) == len(set(upns)) == 13
    found = client.get(
        "/users", params={"$filter": "startswith(userPrincipalName,'ad')", "$count": "true"}
    ).json()
    assert {u["userPrincipalName"] for u in found["value"]} == {
        "admin@contoso.com",
        "adele@contoso.com",
    }
    assert found["@odata.count"] == 2
    assert client.get("/users", params={"$top": "1000"}).status_code == 400


def test_mailbox_settings_time_zone(graph: GraphFactory) -> None:
    settings = graph(roles=["MailboxSettings.Read"]).get("/users/alex@contoso.com/mailboxSettings")
    assert settings.status_code == 200
    assert settings.json()["timeZone"] == "Eastern Standard Time"
    assert settings.json()["workingHours"]["timeZone"]["name"] == "Eastern Standard Time"
    assert (
        graph(roles=["Mail.Read"]).get("/users/alex@contoso.com/mailboxSettings").status_code == 403
    )
    own = graph(user="johanna@contoso.com", scopes=["MailboxSettings.Read"]).get(
        "/me/mailboxSettings"
    )
    assert own.json()["timeZone"] == "W. Europe Standard Time"
