"""``$search`` on messages, as "Use the $search query parameter" documents it
(https://learn.microsoft.com/graph/search-query-parameter#using-search-on-message-collections):

- a bare term searches the default properties ``from``, ``subject`` and ``body``;
  ``property:value`` searches one property (KQL); several terms must all match;
- results are sorted by the date and time the message was sent, newest first, and a
  ``$search`` request returns up to 1,000 results;
- ``$search`` can't be combined with ``$filter``, ``$orderby`` or ``$skip`` (pages follow
  ``$skiptoken``); no ``ConsistencyLevel`` header is needed for messages.

m365sim's KQL is a subset: terms (quoted phrases allowed) joined by spaces, ``AND``
optional; no ``OR``, ``NOT``, parentheses, ranges or wildcards beyond a term matching the
start of a word. Properties: ``from``, ``to``, ``cc``, ``bcc``, ``participants``,
``recipients``, ``subject``, ``body``, ``attachment``, ``hasAttachments``, ``importance``.
Other KQL properties (``received``, ``sent``, ``size``, ``kind``) answer 501 NotModelled.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable

from m365sim.exceptions import GraphError
from m365sim.graph import exceptions as errors
from m365sim.graph.mail.models import Message
from m365sim.graph.odata import not_modelled

__all__ = ["SEARCH_LIMIT", "compile_search", "refuse_combinations"]

SEARCH_LIMIT = 1000
"""Graph: "A $search request returns up to 1,000 results"."""

_WORD = re.compile(r"[\w@.'-]+", re.UNICODE)


class SearchNotSupportedWith(GraphError):
    status = 400
    code = "BadRequest"
    message = "This request is not supported with $search."


def refuse_combinations(options: Iterable[str]) -> None:
    """``$filter``, ``$orderby`` and ``$skip`` can't go with ``$search`` on messages."""
    for option in options:
        raise SearchNotSupportedWith(
            f"The query parameter '${option}' is not supported with '$search' on messages."
        )


def _addresses(entries: Iterable[tuple[str, str]]) -> str:
    return " ".join(f"{name} {address}" for name, address in entries)


_FIELDS: dict[str, Callable[[Message], str]] = {
    "from": lambda m: _addresses([m.from_] if m.from_ else []),
    "to": lambda m: _addresses(m.to),
    "cc": lambda m: _addresses(m.cc),
    "bcc": lambda m: _addresses(m.bcc),
    "recipients": lambda m: _addresses([*m.to, *m.cc, *m.bcc]),
    "participants": lambda m: _addresses([*([m.from_] if m.from_ else []), *m.to, *m.cc, *m.bcc]),
    "subject": lambda m: m.subject,
    "body": lambda m: m.text_body(),
    "attachment": lambda m: " ".join(a.name for a in m.attachments),
    "hasattachments": lambda m: "true" if m.has_attachments else "false",
    "importance": lambda m: m.importance,
}
_DEFAULT = ("from", "subject", "body")
_UNMODELLED = frozenset({"received", "sent", "size", "kind"})


def _matches(text: str, term: str) -> bool:
    """A term (or phrase) matches where a word of ``text`` starts with it."""
    lowered = text.casefold()
    needle = term.casefold()
    if " " in needle:
        return needle in lowered
    return any(word.startswith(needle) for word in _WORD.findall(lowered))


def compile_search(text: str) -> Callable[[Message], bool]:
    """A predicate for the ``$search`` value (quoted, as Graph wants it, or bare)."""
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    try:
        parts = shlex.split(value)
    except ValueError as exc:
        raise errors.BadRequest(f"Syntax error in $search: {exc}.") from exc
    clauses: list[tuple[tuple[str, ...], str]] = []
    for part in parts:
        if part.upper() == "AND":
            continue
        if part.upper() in ("OR", "NOT") or part.startswith(("(", "-")):
            raise not_modelled(f"$search {part}", "message")
        name, sep, term = part.partition(":")
        if sep and name:
            key = name.lower()
            if key in _UNMODELLED:
                raise not_modelled(f"$search {name}:", "message")
            if key not in _FIELDS:
                raise errors.BadRequest(f"'{name}' is not a searchable message property.")
            clauses.append(((key,), term))
        else:
            clauses.append((_DEFAULT, part))
    if not clauses:
        raise errors.BadRequest("The $search value is empty.")

    def predicate(message: Message) -> bool:
        return all(
            any(_matches(_FIELDS[field](message), term) for field in fields)
            for fields, term in clauses
        )

    return predicate
