"""A subset of Exchange's OPATH recipient filters, as management scopes use them
(``New-ManagementScope -RecipientRestrictionFilter``).

Supported: comparisons ``Property -eq|-ne|-like|-notlike 'value'`` (``$null`` too),
combined with ``-and``, ``-or``, ``-not`` and parentheses. String comparisons are
case-insensitive as in Exchange; ``-like`` takes ``*`` wildcards. Properties: the
``FILTERABLE`` set below. ``MemberOfGroup`` takes a group's distinguished name (the
``CN=`` part is matched against the group's display name), id, mail address or display
name, and includes nested groups. Anything else is refused when the scope is created,
as Exchange refuses an unknown filterable property.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from m365sim.directory.models import Group, Tenant, User

__all__ = ["FILTERABLE", "FilterSyntaxError", "RecipientFilter", "compile_filter", "is_member"]

FILTERABLE = frozenset(
    {
        "memberofgroup",
        "department",
        "title",
        "displayname",
        "name",
        "alias",
        "primarysmtpaddress",
        "userprincipalname",
        "company",
        "city",
        "office",
        "stateorprovince",
        "countryorregion",
        *(f"customattribute{n}" for n in range(1, 16)),
    }
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<op>-(?:eq|ne|like|notlike|and|or|not)\b) |
        '(?P<squote>(?:[^']|'')*)' | "(?P<dquote>(?:[^"]|"")*)" |
        (?P<null>\$null\b) |
        (?P<word>[A-Za-z][A-Za-z0-9]*)
    )""",
    re.VERBOSE | re.IGNORECASE,
)

Predicate = Callable[[Tenant, User, Mapping[str, str]], bool]


class FilterSyntaxError(ValueError):
    """The filter can't be parsed or names a property scopes can't filter on."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterSyntaxError(
                f"Invalid filter syntax near position {pos}: {text[pos : pos + 20]!r}"
            )
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "squote":
            tokens.append(_Tok("value", (match.group("squote") or "").replace("''", "'")))
        elif kind == "dquote":
            tokens.append(_Tok("value", (match.group("dquote") or "").replace('""', '"')))
        elif kind == "op":
            tokens.append(_Tok("op", match.group("op").lower()))
        else:
            tokens.append(_Tok(kind, match.group(kind)))
    return tokens


def is_member(tenant: Tenant, group: Group, user: User, _seen: set[str] | None = None) -> bool:
    """Is ``user`` a member of ``group``, directly or through nested groups?"""
    seen = _seen if _seen is not None else set()
    if group.id in seen:
        return False
    seen.add(group.id)
    if user.id in group.member_ids:
        return True
    for member_id in group.member_ids:
        nested = tenant.groups.get(member_id)
        if nested is not None and is_member(tenant, nested, user, seen):
            return True
    return False


def find_group_by_reference(tenant: Tenant, reference: str) -> Group | None:
    """A group by DN (``CN=Name,OU=...``), id, mail address or display name."""
    if reference.upper().startswith("CN="):
        reference = reference[3:].split(",", 1)[0]
    return tenant.find_group(reference)


def _property(user: User, name: str, attributes: Mapping[str, str]) -> str | None:
    builtin: dict[str, str | None] = {
        "displayname": user.display_name,
        "name": user.user_principal_name.split("@")[0],
        "alias": user.user_principal_name.split("@")[0],
        "primarysmtpaddress": user.address,
        "userprincipalname": user.user_principal_name,
        "title": user.job_title,
    }
    for key, value in attributes.items():
        if key.lower() == name:
            return value
    return builtin.get(name)


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterSyntaxError("The filter ends unexpectedly.")
        self.pos += 1
        return tok

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek() is not None:
            raise FilterSyntaxError(f"Unexpected {self.peek().text!r} in filter.")  # type: ignore[union-attr]
        return predicate

    def expr(self) -> Predicate:
        left = self.term()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == "-or":
            self.take()
            right = self.term()
            left = (lambda a, b: lambda t, u, attrs: a(t, u, attrs) or b(t, u, attrs))(left, right)
        return left

    def term(self) -> Predicate:
        left = self.factor()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == "-and":
            self.take()
            right = self.factor()
            left = (lambda a, b: lambda t, u, attrs: a(t, u, attrs) and b(t, u, attrs))(left, right)
        return left

    def factor(self) -> Predicate:
        tok = self.take()
        if tok.kind == "op" and tok.text == "-not":
            inner = self.factor()
            return lambda t, u, attrs: not inner(t, u, attrs)
        if tok.kind == "lparen":
            inner = self.expr()
            if self.take().kind != "rparen":
                raise FilterSyntaxError("Missing ')' in filter.")
            return inner
        if tok.kind != "word":
            raise FilterSyntaxError(f"Expected a property name, found {tok.text!r}.")
        return self.comparison(tok.text)

    def comparison(self, prop: str) -> Predicate:
        name = prop.lower()
        if name not in FILTERABLE:
            raise FilterSyntaxError(
                f"'{prop}' isn't a supported filterable property for management scopes."
            )
        op = self.take()
        if op.kind != "op" or op.text not in {"-eq", "-ne", "-like", "-notlike"}:
            raise FilterSyntaxError(f"Expected -eq, -ne, -like or -notlike after {prop}.")
        value_tok = self.take()
        if value_tok.kind not in {"value", "null", "word"}:
            raise FilterSyntaxError(f"Expected a value after {prop} {op.text}.")
        value: str | None = None if value_tok.kind == "null" else value_tok.text
        negate = op.text in {"-ne", "-notlike"}
        like = op.text in {"-like", "-notlike"}
        if name == "memberofgroup":
            reference = value or ""

            def member(tenant: Tenant, user: User, attrs: Mapping[str, str]) -> bool:
                group = find_group_by_reference(tenant, reference)
                return group is not None and is_member(tenant, group, user)

            return (lambda t, u, a: not member(t, u, a)) if negate else member

        def compare(tenant: Tenant, user: User, attrs: Mapping[str, str]) -> bool:
            actual = _property(user, name, attrs)
            if value is None:
                result = actual in (None, "")
            elif actual is None:
                result = False
            elif like:
                result = fnmatch.fnmatchcase(actual.lower(), value.lower())
            else:
                result = actual.lower() == value.lower()
            return not result if negate else result

        return compare


@dataclass(frozen=True)
class RecipientFilter:
    """A compiled recipient filter; ``matches`` evaluates it for one user."""

    text: str
    predicate: Predicate

    def matches(self, tenant: Tenant, user: User, attributes: Mapping[str, str]) -> bool:
        return self.predicate(tenant, user, attributes)


def compile_filter(text: str) -> RecipientFilter:
    tokens = _tokenize(text)
    if not tokens:
        raise FilterSyntaxError("The filter is empty.")
    return RecipientFilter(text=text, predicate=_Parser(tokens).parse())
