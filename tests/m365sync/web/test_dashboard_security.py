from __future__ import annotations

from fastapi.testclient import TestClient

from m365sync.web.security import content_security_policy, sanitize_email_html


def test_every_page_carries_a_policy_without_inline_script_and_no_framing(
    client: TestClient,
) -> None:
    headers = client.get("/sign-in").headers

    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"


def test_forms_may_only_go_to_us_and_the_microsoft_sign_in_host() -> None:
    policy = content_security_policy(sign_in_origins=("https://login.microsoftonline.com/",))
    assert "form-action 'self' https://login.microsoftonline.com;" in policy


def test_email_bodies_lose_script_handlers_styles_and_remote_content() -> None:
    body = (
        '<p onclick="steal()">Hello <b>there</b></p><script>alert(1)</script>'
        '<img src="https://tracker.example/pixel.gif">'
        '<img src="data:image/png;base64,AAAA" alt="logo">'
        '<a href="javascript:alert(1)">bad</a><a href="https://contoso.com">good</a>'
        '<iframe src="https://evil.example"></iframe><div style="background:url(https://e.example)">x</div>'
        "<form action=https://evil.example><input name=p></form>"
    )

    clean = sanitize_email_html(body)

    assert "<b>there</b>" in clean
    assert "script" not in clean and "onclick" not in clean and "alert" not in clean
    assert "tracker.example" not in clean and "evil.example" not in clean and "style" not in clean
    assert 'src="data:image/png;base64,AAAA"' in clean
    assert 'href="https://contoso.com"' in clean and 'rel="noopener noreferrer nofollow"' in clean
    assert "<form" not in clean and "<input" not in clean
