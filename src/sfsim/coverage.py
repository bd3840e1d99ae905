"""Generate ``docs/sfsim/coverage.md``: every route sfsim serves, from the code itself.

Run ``python -m sfsim.coverage > docs/sfsim/coverage.md``; a test fails when the
committed page no longer matches the routes.
"""

from __future__ import annotations

import inspect
from collections import defaultdict

from starlette.routing import BaseRoute, Route


def _area(path: str) -> str:
    if path.startswith("/_sim"):
        return "Control API (`/_sim`, not part of Salesforce's surface)"
    if path.startswith("/services/data"):
        return "REST API (`/services/data`)"
    if path.startswith("/lightning"):
        return "Lightning Experience (record pages people open)"
    return "OAuth 2.0 and identity"


def _summary(route: Route) -> str:
    doc = inspect.getdoc(route.endpoint) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return first.replace("|", "\\|")


def render(routes: list[BaseRoute]) -> str:
    grouped: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for route in routes:
        if not isinstance(route, Route):
            continue
        methods = ", ".join(sorted((route.methods or set()) - {"HEAD"}))
        path = route.path.rstrip("/") or "/"
        key = (methods, path)
        if key in seen:
            continue
        seen.add(key)
        grouped[_area(path)].append((methods, path, _summary(route)))
    lines = [
        "# sfsim coverage",
        "",
        "Generated from the code by `python -m sfsim.coverage`; do not edit by hand.",
        "REST paths answer with and without a trailing slash. Where sfsim differs from",
        "Salesforce is in [../sfsim.md](../sfsim.md).",
        "",
    ]
    for area in sorted(grouped):
        lines += [f"## {area}", "", "| methods | path | what it does |", "|---|---|---|"]
        for methods, path, summary in sorted(grouped[area], key=lambda row: (row[1], row[0])):
            lines.append(f"| {methods} | `{path}` | {summary} |")
        lines.append("")
    lines.append(f"{sum(len(rows) for rows in grouped.values())} routes in all.")
    return "\n".join(lines) + "\n"


def main() -> None:
    from sfsim.app import collect_routes

    print(render(collect_routes()), end="")


if __name__ == "__main__":
    main()
