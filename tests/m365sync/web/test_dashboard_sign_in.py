from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from m365sync.organizations.models import Role


def test_a_member_signs_in_with_a_password_and_lands_on_their_page(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com")

    answer = sign_in(client, "adele@contoso.com")

    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/").headers["location"] == "/me/connections"


def test_a_wrong_password_says_what_to_do_without_revealing_whether_the_account_exists(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com")

    wrong_password = sign_in(client, "adele@contoso.com", "not the password")
    unknown_email = sign_in(client, "nobody@contoso.com", "not the password")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "The email or password is not right." in wrong_password.text
    assert "The email or password is not right." in unknown_email.text


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com")
    for _ in range(5):
        sign_in(client, "adele@contoso.com", "guess")

    answer = sign_in(client, "adele@contoso.com")

    assert answer.status_code == 401
    assert "locked" in answer.text


def test_sign_in_form_without_its_csrf_token_is_refused(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com")

    answer = client.post(
        "/sign-in",
        data={"email": "adele@contoso.com", "password": "x" * 12, "csrf_token": "forged"},
    )

    assert answer.status_code == 401
    assert "The sign-in form expired." in answer.text


def test_a_form_without_the_session_csrf_token_changes_nothing(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "megan@contoso.com", Role.ADMIN)
    sign_in(client, "megan@contoso.com")

    forged = client.post("/admin/domains", data={"name": "contoso.com", "csrf_token": "forged"})

    assert forged.status_code == 403
    assert "<td>contoso.com</td>" not in client.get("/admin/domains").text


def test_sign_out_ends_the_session(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com")
    sign_in(client, "adele@contoso.com")
    token = csrf_of(client.get("/me/connections").text)

    client.post("/sign-out", data={"csrf_token": token})

    assert client.get("/me/connections").headers["location"].startswith("/sign-in")


def test_pages_ask_to_sign_in_and_come_back_afterwards(client: TestClient) -> None:
    answer = client.get("/admin/domains")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/admin/domains"
