"""``m365sync crm import``: records into the embedded CRM store (format: docs/crm.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365sync.cli._output import Context, get_org, out

app = typer.Typer(no_args_is_help=True, help="The embedded CRM store.")


@app.command("import")
def crm_import_command(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV file (docs/crm.md).")
    ],
    org: Annotated[str, typer.Option("--org", help="Organization slug, id or name.")],
    kind: Annotated[str, typer.Option("--kind", help="contacts, leads or accounts.")] = "contacts",
) -> None:
    """Import contacts, leads or accounts from CSV (re-importing updates, never duplicates)."""
    from m365sync.crm.importer import import_csv

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        report = import_csv(session, organization.id, kind, path.read_text(encoding="utf-8-sig"))
    out.print(f"Imported {kind}: {report.created} created, {report.updated} updated.")
    for line, problem in report.errors:
        out.print(f"[red]line {line}[/red]: {problem}")
    raise typer.Exit(1 if report.errors else 0)
