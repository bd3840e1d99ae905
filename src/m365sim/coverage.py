"""Generate ``docs/m365sim/coverage.md``: every route m365sim serves, from the code itself.

Run ``python -m m365sim.coverage > docs/m365sim/coverage.md``; a test fails when the
committed page no longer matches the routes.
"""

from __future__ import annotations

import inspect
from collections import defaultdict

from starlette.routing import BaseRoute, Route


def _area(path: str) -> str:
    if path.startswith("/_sim"):
        return "Control API (`/_sim`, not part of Microsoft's surface)"
    if path.startswith("/v1.0"):
        return "Microsoft Graph v1.0"
    if path.lower().startswith(("/ews/", "/autodiscover/")):
        return "Exchange Server (EWS and Autodiscover)"
    return "Microsoft Entra ID (identity platform v2.0)"


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
        key = (methods, route.path)
        if key in seen:
            continue
        seen.add(key)
        grouped[_area(route.path)].append((methods, route.path, _summary(route)))
    lines = [
        "# m365sim coverage",
        "",
        "Generated from the code by `python -m m365sim.coverage`; do not edit by hand.",
        "Query options and known differences from Microsoft are in each area's page.",
        "",
    ]
    for area in sorted(grouped):
        lines += [f"## {area}", "", "| methods | path | what it does |", "|---|---|---|"]
        for methods, path, summary in sorted(grouped[area], key=lambda row: (row[1], row[0])):
            lines.append(f"| {methods} | `{path}` | {summary} |")
        lines.append("")
    lines.append(f"{sum(len(rows) for rows in grouped.values())} routes in all.")
    lines += ["", *_ews_operations()]
    return "\n".join(lines) + "\n"


def _ews_operations() -> list[str]:
    from m365sim.ews.operations import OPERATIONS

    lines = [
        "## EWS operations (`POST /EWS/Exchange.asmx`)",
        "",
        "Differences from Exchange Server are in [ews.md](ews.md).",
        "",
        "| operation | what it does |",
        "|---|---|",
    ]
    for name in sorted(OPERATIONS):
        summary = OPERATIONS[name].summary.replace("|", "\\|")
        lines.append(f"| {name} | {summary} |")
    return lines


def main() -> None:
    from m365sim.app import collect_routes

    print(render(collect_routes()), end="")


if __name__ == "__main__":
    main()
