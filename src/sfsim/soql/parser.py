"""Parse the SOQL subset sfsim runs, with Salesforce's error codes and messages.

Supported: ``SELECT`` of fields, relationship paths (``Account.Name``, ``Owner.Name``,
``Who.Name``) and ``COUNT()``; ``FROM`` one object; ``WHERE`` with ``=``, ``!=``, ``<>``,
``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``IN``, ``NOT IN``, ``AND``, ``OR``, ``NOT`` and
parentheses (mixing ``AND`` and ``OR`` without parentheses is a ``MALFORMED_QUERY``, as
in Salesforce); string, number, ``true``/``false``, ``null``, date, date-time and the date
literals ``TODAY``, ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``;
``ORDER BY`` with ``ASC``/``DESC`` and ``NULLS FIRST``/``LAST``; ``LIMIT``; ``OFFSET``.

Errors carry Salesforce's location preamble (the query line, a caret, ``ERROR at
Row:r:Column:c``) before the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sfsim.data import exceptions as err
from sfsim.data.values import parse_date, parse_datetime

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<datelit>(?:LAST_N_DAYS|NEXT_N_DAYS):\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.IGNORECASE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
DATE_KEYWORDS = frozenset({"TODAY", "YESTERDAY", "TOMORROW"})
KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "NULL",
        "TRUE",
        "FALSE",
    }
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class DateLiteral:
    """``TODAY``, ``LAST_N_DAYS:7``...: a range of days, resolved at run time."""

    name: str
    days: int = 0


@dataclass
class FieldRef:
    path: str  # as written
    token: Token


@dataclass
class Comparison:
    field: FieldRef
    op: str  # =, !=, <, <=, >, >=, LIKE, IN, NOT IN
    value: Any  # str | float | int | bool | None | date | datetime | DateLiteral | list
    quoted: bool | list[bool]
    value_token: Token


@dataclass
class BoolOp:
    op: str  # AND, OR
    parts: list[Any]


@dataclass
class Not:
    part: Any


@dataclass
class Order:
    field: FieldRef
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    text: str
    object_name: str
    object_token: Token
    fields: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def locate(text: str, pos: int) -> str:
    """Salesforce's error preamble: the query's line, a caret under ``pos``, row and column."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    row = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                raise err.MalformedQuery(locate(text, pos) + f"unexpected token: '{text[pos]}'")
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append(Token(kind, match.group(), pos))
            pos = match.end()
        self.index = 0

    # -- token helpers ------------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise err.MalformedQuery(locate(self.text, len(self.text)) + "unexpected token: <EOF>")
        self.index += 1
        return token

    def unexpected(self, token: Token | None) -> err.MalformedQuery:
        if token is None:
            return err.MalformedQuery(
                locate(self.text, max(0, len(self.text) - 1)) + "unexpected token: <EOF>"
            )
        return err.MalformedQuery(
            locate(self.text, token.pos) + f"unexpected token: '{token.text}'"
        )

    def keyword(self, *words: str) -> Token | None:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.text.upper() in words:
            self.index += 1
            return token
        return None

    def expect_keyword(self, word: str) -> Token:
        token = self.keyword(word)
        if token is None:
            raise self.unexpected(self.peek())
        return token

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.index += 1
            return True
        return False

    # -- grammar ------------------------------------------------------------------------
    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[FieldRef] = []
        count_only = False
        while True:
            token = self.next()
            if token.kind != "ident" or token.text.upper() in ("FROM",):
                raise self.unexpected(token)
            if token.text.upper() == "COUNT" and self.punct("("):
                if not self.punct(")"):
                    raise self.unexpected(self.peek())
                count_only = True
            else:
                fields.append(FieldRef(token.text, token))
            if not self.punct(","):
                break
        if count_only and fields:
            raise err.MalformedQuery(
                locate(self.text, fields[0].token.pos)
                + "COUNT() and other fields can't be selected together"
            )
        self.expect_keyword("FROM")
        object_token = self.next()
        if object_token.kind != "ident" or "." in object_token.text:
            raise self.unexpected(object_token)
        query = Query(self.text, object_token.text, object_token, fields, count_only)
        if self.keyword("WHERE"):
            query.where = self.condition()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            while True:
                token = self.next()
                if token.kind != "ident":
                    raise self.unexpected(token)
                order = Order(FieldRef(token.text, token))
                if self.keyword("DESC"):
                    order.descending = True
                else:
                    self.keyword("ASC")
                if self.keyword("NULLS"):
                    which = self.keyword("FIRST", "LAST")
                    if which is None:
                        raise self.unexpected(self.peek())
                    order.nulls_last = which.text.upper() == "LAST"
                query.order.append(order)
                if not self.punct(","):
                    break
        if self.keyword("LIMIT"):
            query.limit = self.integer()
        if self.keyword("OFFSET"):
            query.offset = self.integer()
        if self.peek() is not None:
            raise self.unexpected(self.peek())
        return query

    def integer(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    def condition(self) -> Any:
        parts = [self.unary()]
        joiner: str | None = None
        while True:
            token = self.keyword("AND", "OR")
            if token is None:
                break
            word = token.text.upper()
            if joiner is not None and word != joiner:
                raise err.MalformedQuery(
                    locate(self.text, token.pos) + f"unexpected token: '{token.text}'"
                )
            joiner = word
            parts.append(self.unary())
        return parts[0] if joiner is None else BoolOp(joiner, parts)

    def unary(self) -> Any:
        if self.keyword("NOT"):
            return Not(self.unary())
        if self.punct("("):
            inner = self.condition()
            if not self.punct(")"):
                raise self.unexpected(self.peek())
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.next()
        if token.kind != "ident" or token.text.upper() in KEYWORDS:
            raise self.unexpected(token)
        ref = FieldRef(token.text, token)
        op_token = self.peek()
        if self.keyword("LIKE"):
            value, quoted, value_token = self.value()
            return Comparison(ref, "LIKE", value, quoted, value_token)
        if self.keyword("NOT"):
            self.expect_keyword("IN")
            return self.in_list(ref, "NOT IN")
        if self.keyword("IN"):
            return self.in_list(ref, "IN")
        if op_token is None or op_token.kind != "op":
            raise self.unexpected(op_token)
        self.index += 1
        op = "!=" if op_token.text == "<>" else op_token.text
        value, quoted, value_token = self.value()
        return Comparison(ref, op, value, quoted, value_token)

    def in_list(self, ref: FieldRef, op: str) -> Comparison:
        start = self.peek()
        if not self.punct("("):
            raise self.unexpected(self.peek())
        values: list[Any] = []
        quoted: list[bool] = []
        while True:
            value, was_quoted, _ = self.value()
            values.append(value)
            quoted.append(was_quoted)
            if self.punct(")"):
                break
            if not self.punct(","):
                raise self.unexpected(self.peek())
        assert start is not None
        return Comparison(ref, op, values, quoted, start)

    def value(self) -> tuple[Any, bool, Token]:
        token = self.next()
        if token.kind == "string":
            body = token.text[1:-1]
            text = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
            return text, True, token
        if token.kind == "number":
            number: float | int = float(token.text) if "." in token.text else int(token.text)
            return number, False, token
        if token.kind == "date":
            parsed_date = parse_date(token.text)
            if parsed_date is None:
                raise self.unexpected(token)
            return parsed_date, False, token
        if token.kind == "datetime":
            parsed = parse_datetime(token.text)
            if parsed is None:
                raise self.unexpected(token)
            return parsed, False, token
        if token.kind == "datelit":
            name, _, days = token.text.partition(":")
            return DateLiteral(name.upper(), int(days)), False, token
        if token.kind == "ident":
            word = token.text.upper()
            if word == "NULL":
                return None, False, token
            if word in ("TRUE", "FALSE"):
                return word == "TRUE", False, token
            if word in DATE_KEYWORDS:
                return DateLiteral(word), False, token
        raise self.unexpected(token)


def parse(text: str) -> Query:
    """A parsed query, or ``MALFORMED_QUERY`` saying where the text went wrong."""
    return _Parser(text).query()


def is_temporal(value: Any) -> bool:
    return isinstance(value, date | datetime | DateLiteral)
