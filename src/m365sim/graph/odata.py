"""OData query options as Microsoft Graph applies them: parse, validate, evaluate.

Every Graph collection route parses its query string with ``ODataQuery.from_request``,
naming the options it supports; anything else answers Graph's 400 instead of being
silently ignored, so the product cannot come to depend on an option Microsoft rejects.
The evaluation helpers (``compile_filter``, ``apply_orderby``, ``select_fields``, ``page``)
work on Graph-shaped JSON dicts, so a backend filters and sorts exactly what it returns.

What is promised:

- ``$select`` (names validated against the entity's properties), ``$top`` (1..``max_top``),
  ``$skip``, ``$skiptoken`` (opaque, handed back to the backend), ``$orderby``
  (``prop [asc|desc], ...``), ``$count`` (``true``/``false``), ``$filter`` with
  ``eq ne gt ge lt le``, ``and or not``, parentheses, ``startswith(p,'x')``,
  ``contains(p,'x')``, ``endswith(p,'x')`` and ``coll/any(v: v/... eq 'x')``; literals are
  strings, numbers, ``true``/``false``/``null`` and ISO 8601 date-times.
- ``Prefer`` headers parsed into a dict (``parse_prefer``).

Differences from Microsoft Graph: string comparisons are case-insensitive everywhere
(Exchange and Entra ID are case-insensitive for the properties m365sim filters on); the
``$`` prefix is optional on every option (Graph v1.0 makes it optional for a subset of
APIs only); ``$expand``, ``$search`` and ``$format`` are refused unless a route allows
(and then handles) them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

import orjson
from starlette.requests import Request

from m365sim.dates import parse_datetime
from m365sim.exceptions import GraphError
from m365sim.graph.exceptions import (
    DirectoryPropertyNotFound,
    InvalidFilterClause,
    InvalidTopValue,
    NotModelled,
    PropertyNotFound,
    QueryOptionNotAllowed,
    TopLimitExceeded,
    UnrecognizedQueryOption,
)

__all__ = [
    "SYSTEM_OPTIONS",
    "AnyOf",
    "Comparison",
    "FilterExpr",
    "FunctionCall",
    "Logical",
    "Not",
    "ODataQuery",
    "OrderBy",
    "apply_filter",
    "apply_orderby",
    "compile_filter",
    "filter_properties",
    "metadata_url",
    "next_link",
    "not_modelled",
    "page",
    "parse_filter",
    "parse_orderby",
    "parse_prefer",
    "render_collection",
    "select_fields",
]

T = TypeVar("T")

SYSTEM_OPTIONS = frozenset(
    {
        "select",
        "top",
        "skip",
        "skiptoken",
        "deltatoken",
        "orderby",
        "filter",
        "count",
        "expand",
        "search",
        "format",
    }
)
"""OData system query options Graph recognises (without the ``$``)."""


# -- filter AST -----------------------------------------------------------------------------

Literal_ = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str  # eq ne gt ge lt le
    value: Literal_


@dataclass(frozen=True)
class FunctionCall:
    name: str  # startswith contains endswith
    path: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class Logical:
    op: str  # and or
    left: FilterExpr
    right: FilterExpr


@dataclass(frozen=True)
class Not:
    operand: FilterExpr


@dataclass(frozen=True)
class AnyOf:
    """``collection/any(v: <body>)``; paths inside ``body`` start at the element."""

    collection: tuple[str, ...]
    variable: str
    body: FilterExpr


FilterExpr = Comparison | FunctionCall | Logical | Not | AnyOf

_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_FUNCTIONS = frozenset({"startswith", "contains", "endswith"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<punct>[(),:])
      | (?P<word>[A-Za-z_@][A-Za-z0-9_./@-]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidFilterClause(
                f"Invalid filter clause: syntax error at position {pos} in '{text}'."
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _FilterParser:
    """Recursive descent over OData's boolean expression grammar (the subset above)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.variables: list[str] = []

    def fail(self, why: str) -> InvalidFilterClause:
        return InvalidFilterClause(f"Invalid filter clause: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of expression.")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        _kind, text = self.take()
        if text != value:
            raise self.fail(f"expected '{value}' but found '{text}'.")

    def parse(self) -> FilterExpr:
        expr = self.parse_or()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        return expr

    def parse_or(self) -> FilterExpr:
        left = self.parse_and()
        while (tok := self.peek()) is not None and tok == ("word", "or"):
            self.take()
            left = Logical("or", left, self.parse_and())
        return left

    def parse_and(self) -> FilterExpr:
        left = self.parse_unary()
        while (tok := self.peek()) is not None and tok == ("word", "and"):
            self.take()
            left = Logical("and", left, self.parse_unary())
        return left

    def parse_unary(self) -> FilterExpr:
        tok = self.peek()
        if tok == ("word", "not"):
            self.take()
            return Not(self.parse_unary())
        if tok == ("punct", "("):
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_predicate()

    def parse_path(self, text: str) -> tuple[str, ...]:
        parts = tuple(text.split("/"))
        if self.variables and parts == (self.variables[-1],):
            return ("$it",)  # the element itself, in a collection of primitives
        if self.variables and parts[0] == self.variables[-1]:
            parts = parts[1:]
        if not parts or any(not p for p in parts):
            raise self.fail(f"'{text}' is not a property path.")
        return parts

    def parse_literal(self) -> Literal_:
        kind, text = self.take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "datetime":
            if "T" not in text and len(text) == 10:
                return parse_datetime(text + "T00:00:00Z")
            return parse_datetime(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "word" and text in ("true", "false"):
            return text == "true"
        if kind == "word" and text == "null":
            return None
        raise self.fail(f"'{text}' is not a literal.")

    def parse_predicate(self) -> FilterExpr:
        kind, text = self.take()
        if kind != "word":
            raise self.fail(f"unexpected '{text}'.")
        if text.lower() in _FUNCTIONS and self.peek() == ("punct", "("):
            self.take()
            path_kind, path_text = self.take()
            if path_kind != "word":
                raise self.fail(f"{text} expects a property as its first argument.")
            self.expect(",")
            value = self.parse_literal()
            if not isinstance(value, str):
                raise self.fail(f"{text} expects a string as its second argument.")
            self.expect(")")
            call: FilterExpr = FunctionCall(text.lower(), self.parse_path(path_text), value)
            return self.maybe_compared_to_bool(call)
        if text.endswith("/any") and self.peek() == ("punct", "("):
            self.take()
            collection = self.parse_path(text[: -len("/any")])
            var_kind, variable = self.take()
            if var_kind != "word":
                raise self.fail("any() expects a range variable.")
            self.expect(":")
            self.variables.append(variable)
            body = self.parse_or()
            self.variables.pop()
            self.expect(")")
            return AnyOf(collection, variable, body)
        path = self.parse_path(text)
        op_tok = self.peek()
        if op_tok is None or op_tok[0] != "word" or op_tok[1] not in _COMPARISONS:
            # A bare boolean property: ``isRead`` means ``isRead eq true``.
            return Comparison(path, "eq", True)
        self.take()
        return Comparison(path, op_tok[1], self.parse_literal())

    def maybe_compared_to_bool(self, call: FilterExpr) -> FilterExpr:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1] in ("eq", "ne"):
            self.take()
            value = self.parse_literal()
            if not isinstance(value, bool):
                raise self.fail("a function result compares only to true or false.")
            return call if (value is True) == (tok[1] == "eq") else Not(call)
        return call


def parse_filter(text: str) -> FilterExpr:
    """The AST of a ``$filter`` expression; syntax errors are Graph's 400."""
    if not text.strip():
        raise InvalidFilterClause("Invalid filter clause: the expression is empty.")
    return _FilterParser(text).parse()


def filter_properties(expr: FilterExpr) -> list[tuple[str, ...]]:
    """The property paths an expression reads, in order of appearance (for validation and
    for Exchange's "$orderby properties must appear first in $filter" rule)."""
    found: list[tuple[str, ...]] = []

    def walk(node: FilterExpr) -> None:
        if isinstance(node, Comparison | FunctionCall):
            found.append(node.path)
        elif isinstance(node, Logical):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, Not):
            walk(node.operand)
        else:
            found.append(node.collection)

    walk(expr)
    return found


# -- filter evaluation ----------------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]


def _resolve(item: Any, path: tuple[str, ...]) -> Any:
    value = item
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _normalise(value: Any, like: Literal_) -> Any:
    """Bring a JSON value to the literal's type so ``<``/``==`` mean what OData means."""
    if isinstance(like, datetime):
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError:
                return None
        return value
    if isinstance(like, str) and isinstance(value, str):
        return value.casefold()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def compile_filter(expr: FilterExpr) -> Predicate:
    """A predicate over Graph-shaped dicts equivalent to ``expr``."""
    if isinstance(expr, Comparison):
        path, op = expr.path, expr.op
        literal = expr.value
        right = literal.casefold() if isinstance(literal, str) else literal
        return lambda item: _compare(op, _normalise(_resolve(item, path), literal), right)
    if isinstance(expr, FunctionCall):
        fpath, needle = expr.path, expr.value.casefold()
        name = expr.name

        def call(item: Mapping[str, Any]) -> bool:
            value = _resolve(item, fpath)
            if not isinstance(value, str):
                return False
            hay = value.casefold()
            if name == "startswith":
                return hay.startswith(needle)
            if name == "endswith":
                return hay.endswith(needle)
            return needle in hay

        return call
    if isinstance(expr, Logical):
        left, right_pred = compile_filter(expr.left), compile_filter(expr.right)
        if expr.op == "and":
            return lambda item: left(item) and right_pred(item)
        return lambda item: left(item) or right_pred(item)
    if isinstance(expr, Not):
        inner = compile_filter(expr.operand)
        return lambda item: not inner(item)
    body = compile_filter(expr.body)
    collection = expr.collection

    def any_of(item: Mapping[str, Any]) -> bool:
        values = _resolve(item, collection)
        if not isinstance(values, list):
            return False
        return any(body(v if isinstance(v, Mapping) else {"$it": v}) for v in values)

    return any_of


def apply_filter(
    items: Iterable[T], expr: FilterExpr | None, view: Callable[[T], Mapping[str, Any]]
) -> list[T]:
    """The items whose Graph view (``view(item)``) satisfies ``expr``, order kept."""
    if expr is None:
        return list(items)
    predicate = compile_filter(expr)
    return [item for item in items if predicate(view(item))]


# -- $orderby -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderBy:
    path: tuple[str, ...]
    descending: bool = False

    @property
    def name(self) -> str:
        return "/".join(self.path)


def parse_orderby(text: str) -> tuple[OrderBy, ...]:
    clauses: list[OrderBy] = []
    for raw in text.split(","):
        parts = raw.split()
        if (
            not parts
            or len(parts) > 2
            or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc"))
        ):
            raise QueryOptionNotAllowed(f"Invalid $orderby expression: '{text}'.")
        clauses.append(
            OrderBy(tuple(parts[0].split("/")), len(parts) == 2 and parts[1].lower() == "desc")
        )
    return tuple(clauses)


class _SortKey:
    """Orders None first and compares strings case-insensitively, like Exchange."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value.casefold() if isinstance(value, str) else value

    def __lt__(self, other: _SortKey) -> bool:
        if self.value is None:
            return other.value is not None
        if other.value is None:
            return False
        try:
            return bool(self.value < other.value)
        except TypeError:
            return str(self.value) < str(other.value)


def apply_orderby(
    items: Iterable[T], orderby: Sequence[OrderBy], view: Callable[[T], Mapping[str, Any]]
) -> list[T]:
    """Items sorted by ``orderby`` (stable; later clauses break ties of earlier ones)."""
    result = list(items)
    for clause in reversed(orderby):
        path = clause.path
        result.sort(
            key=lambda item: _SortKey(_resolve(view(item), path)), reverse=clause.descending
        )
    return result


# -- $select, paging ------------------------------------------------------------------------


def select_fields(
    obj: Mapping[str, Any], select: Collection[str] | None, always: Iterable[str] = ("id",)
) -> dict[str, Any]:
    """``obj`` reduced to the selected properties, plus ``always`` and OData annotations
    (``@odata.etag``, ``@odata.type``, ``@removed``), which Graph returns regardless."""
    if select is None:
        return dict(obj)
    keep = set(select) | set(always)
    return {k: v for k, v in obj.items() if k in keep or k.startswith("@")}


def page(items: Sequence[T], top: int, skip: int = 0) -> tuple[list[T], int | None]:
    """One page of ``items`` and the ``$skip`` of the next page (None on the last page)."""
    end = skip + top
    chunk = list(items[skip:end])
    return chunk, (end if end < len(items) else None)


def next_link(request: Request, **replace: str | int | None) -> str:
    """The request's own URL with some query options replaced (None removes one), as Graph
    builds ``@odata.nextLink``. Keys are option names with their ``$`` (``skip="$skip"``
    is spelled ``**{"$skip": 10}``)."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        params[key] = value
    for key, new in replace.items():
        bare = key.lstrip("$")
        for existing in [k for k in params if k.lstrip("$") == bare]:
            del params[existing]
        if new is not None:
            params[key] = str(new)
    base = str(request.url.replace(query=""))
    base = base.rstrip("?")
    if not params:
        return base
    return base + "?" + urlencode(params, safe="$',:()/@")


def metadata_url(request: Request, fragment: str) -> str:
    """``@odata.context`` for ``fragment``: ``https://host/v1.0/$metadata#users('x')/messages``."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return f"{origin}/v1.0/$metadata#{fragment}"


def render_collection(
    context: str,
    values: Iterable[Mapping[str, Any] | bytes],
    *,
    next_link: str | None = None,
    delta_link: str | None = None,
    count: int | None = None,
) -> bytes:
    """A Graph collection body (``@odata.context``, ``@odata.count``, links, ``value``) as
    bytes; items already serialised (``bytes``) are spliced in without re-encoding, which
    is what keeps 1,000-item pages cheap."""
    head: dict[str, Any] = {"@odata.context": context}
    if count is not None:
        head["@odata.count"] = count
    if next_link is not None:
        head["@odata.nextLink"] = next_link
    if delta_link is not None:
        head["@odata.deltaLink"] = delta_link
    parts = [
        value if isinstance(value, bytes) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        for value in values
    ]
    return orjson.dumps(head)[:-1] + b',"value":[' + b",".join(parts) + b"]}"


# -- Prefer ---------------------------------------------------------------------------------

_PREFER_ITEM = re.compile(r'\s*([^=,;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,;]*))?')


def parse_prefer(request: Request) -> dict[str, str]:
    """The ``Prefer`` preferences (all headers, comma separated), keys lower-cased and
    values unquoted: ``{"odata.maxpagesize": "50", "outlook.body-content-type": "text",
    "idtype": "ImmutableId", "outlook.timezone": "Pacific Standard Time"}``."""
    found: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for part in header.split(","):
            match = _PREFER_ITEM.match(part)
            if match is None or not match.group(1):
                continue
            value = (match.group(2) or "").strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[match.group(1).lower()] = value
    return found


# -- the query ------------------------------------------------------------------------------


def not_modelled(name: str, entity: str) -> NotModelled:
    """The honest answer for a property or relation Graph has and m365sim does not simulate."""
    return NotModelled(
        f"m365sim does not model the '{name}' property of microsoft.graph.{entity}. Microsoft "
        "Graph has it; m365sim cannot return or change it (see docs/m365sim/*.md)."
    )


@dataclass(frozen=True)
class ODataQuery:
    """The validated OData system query options of one request.

    ``top`` is None when the request gave none (the backend applies its own default page
    size). ``raw`` keeps every option as sent (``$`` stripped) for ``next_link``.
    """

    select: tuple[str, ...] | None = None
    top: int | None = None
    skip: int = 0
    skiptoken: str | None = None
    deltatoken: str | None = None
    orderby: tuple[OrderBy, ...] = ()
    filter: FilterExpr | None = None
    filter_text: str | None = None
    count: bool = False
    expand: str | None = None
    search: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)

    DEFAULT_ALLOWED: ClassVar[frozenset[str]] = frozenset(
        {"select", "top", "skip", "skiptoken", "orderby", "filter", "count"}
    )

    @classmethod
    def from_request(
        cls,
        request: Request,
        *,
        allowed: Collection[str] | None = None,
        entity: str = "entity",
        properties: Collection[str] | None = None,
        directory: bool = False,
        max_top: int = 1000,
        custom: Collection[str] = (),
        unmodelled: Collection[str] = (),
    ) -> ODataQuery:
        """Parse and validate the query string.

        ``allowed`` names the system options this route supports (without ``$``); a known
        option outside it is refused, an unknown ``$option`` is refused, and so is an
        unknown plain parameter unless listed in ``custom`` (e.g. ``changeType``).
        ``properties`` (top-level property names of ``entity``, e.g. ``"message"``) turns on
        validation of ``$select``/``$orderby``/``$filter`` names; ``directory`` picks the
        Entra ID wording of that error instead of Exchange's. ``unmodelled`` names properties
        and relations Graph has but m365sim does not simulate: naming one (also in
        ``$expand``) is 501 ``NotModelled``, never "could not find a property".
        """
        allowed_set = {a.lstrip("$").lower() for a in (allowed or cls.DEFAULT_ALLOWED)}
        custom_set = {c.lower() for c in custom}
        options: dict[str, str] = {}
        extra: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            bare = key[1:] if key.startswith("$") else key
            lowered = bare.lower()
            if lowered in SYSTEM_OPTIONS:
                if lowered == "expand":
                    for name in (n.strip().split("(")[0] for n in value.split(",")):
                        if name in unmodelled:
                            raise not_modelled(name, entity)
                if lowered not in allowed_set:
                    raise QueryOptionNotAllowed(
                        f"The query parameter '${lowered}' is not supported."
                    )
                options[lowered] = value
            elif key.startswith("$"):
                raise UnrecognizedQueryOption(f"Unrecognized query argument specified: '{key}'.")
            elif lowered in custom_set:
                extra[lowered] = value
            # other plain parameters are ignored, as Graph ignores unknown custom options

        def unknown(name: str) -> GraphError:
            if name in unmodelled:
                return not_modelled(name, entity)
            if directory:
                return DirectoryPropertyNotFound(
                    f"Parsing OData Select and Expand failed: Could not find a property named "
                    f"'{name}' on type 'microsoft.graph.{entity}'."
                )
            return PropertyNotFound(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
            )

        select: tuple[str, ...] | None = None
        if "select" in options:
            names = tuple(s.strip() for s in options["select"].split(",") if s.strip())
            if properties is not None:
                for name in names:
                    if name not in properties and name != "*":
                        raise unknown(name)
            select = None if "*" in names or not names else names

        top: int | None = None
        if "top" in options:
            raw_top = options["top"].strip()
            if not raw_top.isdigit():
                raise InvalidTopValue(
                    f"Invalid value '{raw_top}' for $top query option found. "
                    "The $top query option requires a non-negative integer value."
                )
            top = int(raw_top)
            if top > max_top:
                raise TopLimitExceeded(
                    f"The limit of '{max_top}' for Top query has been exceeded. "
                    f"The value from the incoming request is '{top}'."
                )
            if top < 1:
                raise InvalidTopValue(
                    f"Invalid value '{raw_top}' for $top query option found. "
                    f"The $top query option requires a value between 1 and {max_top}."
                )

        skip = 0
        if "skip" in options:
            raw_skip = options["skip"].strip()
            if not raw_skip.isdigit():
                raise QueryOptionNotAllowed(
                    f"Invalid value '{raw_skip}' for $skip query option found. "
                    "The $skip query option requires a non-negative integer value."
                )
            skip = int(raw_skip)

        orderby: tuple[OrderBy, ...] = ()
        if "orderby" in options:
            orderby = parse_orderby(options["orderby"])
            if properties is not None:
                for clause in orderby:
                    if clause.path[0] not in properties:
                        raise unknown(clause.path[0])

        filter_expr: FilterExpr | None = None
        if "filter" in options:
            filter_expr = parse_filter(options["filter"])
            if properties is not None:
                for path in filter_properties(filter_expr):
                    if path[0] not in properties:
                        raise unknown(path[0])

        count = False
        if "count" in options:
            raw_count = options["count"].strip().lower()
            if raw_count not in ("true", "false"):
                raise QueryOptionNotAllowed(
                    f"Invalid value '{options['count']}' for $count query option found. "
                    "Valid values are 'true' and 'false'."
                )
            count = raw_count == "true"

        return cls(
            select=select,
            top=top,
            skip=skip,
            skiptoken=options.get("skiptoken"),
            deltatoken=options.get("deltatoken"),
            orderby=orderby,
            filter=filter_expr,
            filter_text=options.get("filter"),
            count=count,
            expand=options.get("expand"),
            search=options.get("search"),
            custom=extra,
        )
