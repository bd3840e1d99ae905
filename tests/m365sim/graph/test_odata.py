"""The shared OData module: parsing, evaluation, and Graph's 400s for what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from m365sim.graph.exceptions import (
    InvalidFilterClause,
    InvalidTopValue,
    PropertyNotFound,
    QueryOptionNotAllowed,
    TopLimitExceeded,
    UnrecognizedQueryOption,
)
from m365sim.graph.odata import (
    Comparison,
    ODataQuery,
    OrderBy,
    apply_orderby,
    compile_filter,
    page,
    parse_filter,
    render_collection,
    select_fields,
)


def request(query: str, prefer: str | None = None) -> Request:
    headers = [(b"prefer", prefer.encode())] if prefer else []
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/v1.0/me/messages",
            "query_string": query.encode(),
            "headers": headers,
            "scheme": "https",
            "server": ("graph", 443),
        }
    )


MESSAGE = {
    "subject": "Re: Quote",
    "isRead": False,
    "receivedDateTime": "2024-03-01T10:00:00Z",
    "from": {"emailAddress": {"address": "Ana@Fabrikam.com"}},
    "toRecipients": [{"emailAddress": {"address": "adele@contoso.com"}}],
    "importance": "high",
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("isRead eq false", True),
        ("isRead", False),
        ("not isRead", True),
        ("receivedDateTime ge 2024-03-01T00:00:00Z and receivedDateTime lt 2024-03-02", True),
        ("receivedDateTime gt 2024-03-01T10:00:00Z", False),
        ("from/emailAddress/address eq 'ana@fabrikam.com'", True),
        ("startswith(subject, 're:')", True),
        ("contains(subject,'quote') and importance ne 'low'", True),
        ("(importance eq 'low' or importance eq 'high') and isRead eq false", True),
        ("toRecipients/any(r: r/emailAddress/address eq 'adele@contoso.com')", True),
        ("subject eq 'it''s'", False),
    ],
)
def test_filter_evaluates_like_graph(expression: str, expected: bool) -> None:
    assert compile_filter(parse_filter(expression))(MESSAGE) is expected


@pytest.mark.parametrize(
    "expression",
    ["", "isRead eq", "subject eq 'open", "(isRead eq true", "startswith(subject)", "eq 5"],
)
def test_bad_filters_are_400(expression: str) -> None:
    with pytest.raises(InvalidFilterClause) as caught:
        parse_filter(expression)
    assert caught.value.status == 400


def test_datetime_literals_parse_with_timezone() -> None:
    expr = parse_filter("receivedDateTime ge 2024-01-01T00:00:00Z")
    assert expr == Comparison(("receivedDateTime",), "ge", datetime(2024, 1, 1, tzinfo=UTC))


def test_query_parses_and_validates_options() -> None:
    query = ODataQuery.from_request(
        request(
            "$select=subject,isRead&$top=5&$skip=10&$orderby=receivedDateTime desc"
            "&$count=true&changeType=created"
        ),
        custom=("changeType",),
        properties={"subject", "isRead", "receivedDateTime"},
    )
    assert query.select == ("subject", "isRead") and query.top == 5 and query.skip == 10
    assert query.orderby == (OrderBy(("receivedDateTime",), True),) and query.count is True
    assert query.custom == {"changetype": "created"}


@pytest.mark.parametrize(
    ("query", "error", "fragment"),
    [
        ("$top=1001", TopLimitExceeded, "The limit of '1000' for Top query has been exceeded"),
        ("$top=0", InvalidTopValue, "between 1 and 1000"),
        ("$top=ten", InvalidTopValue, "non-negative integer"),
        (
            "$select=subject,nope",
            PropertyNotFound,
            "Could not find a property named 'nope' on type 'microsoft.graph.message'",
        ),
        ("$orderby=nope", PropertyNotFound, "'nope'"),
        ("$filter=nope eq 1", PropertyNotFound, "'nope'"),
        ("$expand=attachments", QueryOptionNotAllowed, "$expand"),
        ("$search=hello", QueryOptionNotAllowed, "$search"),
        ("$bogus=1", UnrecognizedQueryOption, "$bogus"),
        ("$count=maybe", QueryOptionNotAllowed, "$count"),
    ],
)
def test_refused_options_raise_graph_errors(query: str, error: type, fragment: str) -> None:
    with pytest.raises(error) as caught:
        ODataQuery.from_request(request(query), entity="message", properties={"subject", "isRead"})
    assert fragment in caught.value.detail
    assert caught.value.status == 400


def test_select_orderby_page_and_render() -> None:
    items = [{"id": str(i), "n": i % 3, "@odata.etag": "e"} for i in range(7)]
    ordered = apply_orderby(items, (OrderBy(("n",), True), OrderBy(("id",))), lambda x: x)
    assert [x["id"] for x in ordered] == ["2", "5", "1", "4", "0", "3", "6"]
    chunk, nxt = page(ordered, 3, 3)
    assert [x["id"] for x in chunk] == ["4", "0", "3"] and nxt == 6
    assert page(ordered, 3, 6)[1] is None
    assert select_fields(items[0], ("n",)) == {"id": "0", "n": 0, "@odata.etag": "e"}
    body = render_collection("ctx", [b'{"a":1}', {"b": 2}], next_link="next", count=2)
    assert (
        body == b'{"@odata.context":"ctx","@odata.count":2,"@odata.nextLink":"next",'
        b'"value":[{"a":1},{"b":2}]}'
    )
