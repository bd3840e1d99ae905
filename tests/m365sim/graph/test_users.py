"""Graph users: /me, /users/{id|upn}, /users with paging, mailboxSettings, permissions."""

from __future__ import annotations

from sim_tokens import GraphFactory

from m365sim.directory.models import Tenant


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
        "/users",
        params={"$filter": "startswith(userPrincipalName,'ad')", "$count": "true"},
        headers={"ConsistencyLevel": "eventual"},
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


ADVANCED = {"ConsistencyLevel": "eventual"}


def test_advanced_queries_need_consistency_level_and_count(graph: GraphFactory) -> None:
    """Graph's "advanced query capabilities": without both advanced query parameters these
    are 400 Request_UnsupportedQuery (learn.microsoft.com/graph/aad-advanced-queries)."""
    client = graph(roles=["User.Read.All"])
    cases = {
        "endsWith": {"$filter": "endswith(mail,'@contoso.com')"},
        "ne": {"$filter": "accountEnabled ne true"},
        "not": {"$filter": "not startswith(displayName,'A')"},
    }
    for operator, params in cases.items():
        for headers, extra in (({}, {}), (ADVANCED, {}), ({}, {"$count": "true"})):
            refused = client.get("/users", params=params | extra, headers=headers)
            assert refused.status_code == 400, (operator, headers, extra)
            error = refused.json()["error"]
            assert error["code"] == "Request_UnsupportedQuery"
            assert f"Operator '{operator}' is not supported" in error["message"]
        allowed = client.get("/users", params=params | {"$count": "true"}, headers=ADVANCED)
        assert allowed.status_code == 200, operator
    ends = client.get(
        "/users",
        params={"$filter": "endswith(userPrincipalName,'@contoso.com')", "$count": "true"},
        headers=ADVANCED,
    ).json()
    assert ends["@odata.count"] == len(ends["value"]) > 0
    assert all(u["userPrincipalName"].endswith("@contoso.com") for u in ends["value"])

    both = {"$filter": "startswith(displayName,'A')", "$orderby": "displayName"}
    refused = client.get("/users", params=both)
    assert refused.json()["error"] == refused.json()["error"] | {
        "code": "Request_UnsupportedQuery",
        "message": "Sorting not supported for current query.",
    }
    assert (
        client.get("/users", params=both | {"$count": "true"}, headers=ADVANCED).status_code == 200
    )
    assert client.get("/users", params={"$orderby": "userPrincipalName"}).status_code == 200
    by_date = {"$orderby": "createdDateTime"}
    assert client.get("/users", params=by_date).status_code == 400
    assert (
        client.get("/users", params=by_date | {"$count": "true"}, headers=ADVANCED).status_code
        == 200
    )
    never = client.get("/users", params={"$orderby": "mail", "$count": "true"}, headers=ADVANCED)
    assert never.status_code == 400


def test_count_is_silently_ignored_without_the_header(graph: GraphFactory) -> None:
    client = graph(roles=["User.Read.All"])
    plain = client.get("/users", params={"$count": "true"})
    assert plain.status_code == 200 and "@odata.count" not in plain.json()
    assert (
        client.get("/users", params={"$count": "true"}, headers=ADVANCED).json()["@odata.count"]
        == 13
    )


def test_users_count_segment_needs_the_header(graph: GraphFactory) -> None:
    client = graph(roles=["User.Read.All"])
    refused = client.get("/users/$count")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_BadRequest"
    assert refused.json()["error"]["message"] == "$count is not currently supported."
    counted = client.get("/users/$count", headers=ADVANCED)
    assert counted.status_code == 200 and counted.text == "13"
    filtered = client.get(
        "/users/$count",
        params={"$filter": "startswith(displayName,'A')"},
        headers=ADVANCED,
    )
    everyone = client.get("/users").json()["value"]
    assert int(filtered.text) == sum(u["displayName"].startswith("A") for u in everyone) > 0


def test_proxy_addresses(graph: GraphFactory, demo_tenant: Tenant) -> None:
    demo_tenant.find_user("alex@contoso.com").aliases.append("alex.wilber@contoso.com")
    client = graph(roles=["User.Read.All"])
    alex = client.get("/users/alex@contoso.com", params={"$select": "proxyAddresses"}).json()
    assert alex["proxyAddresses"] == ["SMTP:alex@contoso.com", "smtp:alex.wilber@contoso.com"]
    assert "proxyAddresses" not in client.get("/users/alex@contoso.com").json()
    found = client.get(
        "/users",
        params={"$filter": "proxyAddresses/any(p:p eq 'smtp:alex.wilber@contoso.com')"},
    ).json()["value"]
    assert [u["userPrincipalName"] for u in found] == ["alex@contoso.com"]
