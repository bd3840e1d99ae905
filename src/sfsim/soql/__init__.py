"""A SOQL subset: parse a query against the org's schema and run it over its records."""

from sfsim.soql.engine import QueryResult, run_query
from sfsim.soql.parser import Query, parse

__all__ = ["Query", "QueryResult", "parse", "run_query"]
