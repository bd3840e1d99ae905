"""What a browser gets when something goes wrong: the product's page, never raw JSON or text,
while the JSON API keeps its JSON error shape; and the favicon every page asks for."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from m365sync.organizations.models import Role


@pytest.fixture
def contoso(people: Any) -> Any:
    org = people.organization("Contoso", "contoso")
    people.member(org, "admin@contoso.com", Role.ADMIN)
    people.member(org, "adele@contoso.com", Role.USER)
    return org


def is_product_page(answer: Any) -> bool:
    return answer.headers["content-type"].startswith("text/html") and (
        '<link rel="stylesheet" href="http://testserver/static/web/app.css">' in answer.text
    )


def test_unknown_addresses_get_the_products_404_page(
    contoso: Any, client: TestClient, sign_in: Any
) -> None:
    answer = client.get("/no/such/page")
    assert answer.status_code == 404 and is_product_page(answer)
    assert "Page not found" in answer.text and "There is no page at this address." in answer.text
    assert '"detail"' not in answer.text
    sign_in(client, "adele@contoso.com")
    answer = client.get("/admin/no-such-page")
    assert answer.status_code == 404 and is_product_page(answer)
    assert 'href="/me/profile"' in answer.text  # her own menu: she is recognised
    assert 'href="/admin/domains"' not in answer.text

    wrong_method = client.get("/sign-out")
    assert wrong_method.status_code == 405 and is_product_page(wrong_method)
    assert "This address can&#39;t be opened that way." in wrong_method.text


def test_a_refused_user_sees_no_admin_menu(contoso: Any, client: TestClient, sign_in: Any) -> None:
    sign_in(client, "adele@contoso.com")
    answer = client.get("/admin/members")
    assert answer.status_code == 403 and is_product_page(answer)
    assert "This page is for admins of your organization." in answer.text
    assert 'href="/admin/' not in answer.text and ">Admin</a>" not in answer.text
    scheduling = client.get("/scheduling/admin")
    assert scheduling.status_code == 403 and is_product_page(scheduling)
    assert 'href="/admin/' not in scheduling.text


def test_pages_outside_the_dashboards_route_class_speak_html_too(
    contoso: Any, client: TestClient
) -> None:
    # The scheduling pages: no session is a redirect to sign-in, not a JSON error.
    answer = client.get("/scheduling?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/scheduling%3Fx%3D1"
    # A booking form's address without its time.
    answer = client.get("/book/contoso/intro/book")
    assert answer.status_code == 422 and is_product_page(answer)
    assert "missing something the page needs" in answer.text


def test_the_json_api_keeps_its_error_shape(contoso: Any, client: TestClient) -> None:
    answer = client.get("/api/v1/organizations/contoso/nothing")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {
            "message": "There is nothing at /api/v1/organizations/contoso/nothing.",
            "fix": "Check the address: the API's routes are listed at /api/docs.",
        }
    }
    assert client.get("/api/v1/organizations/contoso").json()["error"]["message"] == (
        "This API needs an API token."
    )


def test_a_server_error_is_a_page_with_a_reference_and_the_security_headers(
    contoso: Any, app: FastAPI, caplog: Any
) -> None:
    @app.get("/activities-broken", include_in_schema=False)
    def broken() -> None:
        raise RuntimeError("secret detail of a bug")

    @app.get("/api/v1/broken", include_in_schema=False)
    def broken_api() -> None:
        raise RuntimeError("secret detail of a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/activities-broken")
        api = client.get("/api/v1/broken")
    assert page.status_code == 500 and is_product_page(page)
    assert "Something went wrong on our side" in page.text
    assert "secret detail" not in page.text and "Traceback" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    reference = page.text.split("quote reference ", 1)[1][:8]
    assert f"(reference {reference})" in caplog.text
    assert api.status_code == 500
    assert api.json()["error"]["message"] == (
        "Something went wrong on our side: this request was not finished."
    )


def test_the_favicon_is_served_and_named_by_every_page(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    assert (
        'rel="icon" href="http://testserver/static/web/favicon.svg"' in client.get("/sign-in").text
    )


def test_the_api_docs_come_from_this_server(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "<script>" not in docs.text
    assert 'src="http://testserver/api/docs/assets/swagger-ui-bundle.js"' in docs.text
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert client.get("/api/docs/assets/swagger-ui.css").status_code == 200
