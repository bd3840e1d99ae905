"""Services speak no door's syntax: the words a capability puts in an error (its message and
its fix, and Run Test's checks) are shown by the dashboard, the JSON API and the command line
alike, so they name no command-line flag or command, no environment variable and no JSON
field. Each door translates where its own words help (``m365sync.cli.cli_fix``,
``m365sync.web.api.api_fix``, ``m365sync.web.pages.rendering.web_fix``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import m365sync

CAPABILITIES = (
    "organizations",
    "auth",
    "connections",
    "sync",
    "crm",
    "scheduling",
    "audit",
    "microsoft",
)
DOOR_SYNTAX = re.compile(
    r"(?<![\w-])--[a-z][a-z-]+"  # a command-line flag
    r"|\bM365SYNC_[A-Z_]+"  # an environment variable
    r"|\bm365sync (?:orgs|domains|members|service-accounts|access-policy|connections"
    r"|api-tokens|sync|status|resync|crm|db|keys|serve)\b"  # a command
    r'|"[a-z_]+": (?:true|false)'  # a JSON field
)


def _texts(path: Path) -> list[tuple[int, str]]:
    """The module's string literals, docstrings left out (they speak to developers)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_capabilities_word_their_errors_for_every_door() -> None:
    root = Path(m365sync.__file__).parent
    found = []
    for capability in CAPABILITIES:
        for path in sorted((root / capability).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            for line, text in _texts(path):
                for match in DOOR_SYNTAX.finditer(text):
                    found.append(f"{where}:{line}: {match.group(0)}")
    assert not found, "door syntax in a capability's words:\n" + "\n".join(found)


def test_each_door_adds_its_own_words() -> None:
    """Where a capability's words leave out a door's own way to act, that door adds it: the
    command line names its command, the dashboard its menu."""
    from m365sync.auth.microsoft_sign_in import DomainNotVerifiedForSignIn, NotAMember
    from m365sync.cli import cli_fix
    from m365sync.microsoft.errors import AccessDeniedByPolicy
    from m365sync.web.pages.rendering import web_fix

    blocked = AccessDeniedByPolicy()
    assert "m365sync access-policy commands" in (cli_fix(blocked) or "")
    assert "access-policy" not in web_fix(blocked)

    unverified = DomainNotVerifiedForSignIn("woodgrove.com")
    assert "verifies woodgrove.com" in unverified.fix
    assert "Admin → My Organization → Domains" in web_fix(unverified)
    assert "Admin →" not in (unverified.fix or "")
    assert "Admin → Members and mailboxes" in web_fix(NotAMember("wendy@woodgrove.com"))
