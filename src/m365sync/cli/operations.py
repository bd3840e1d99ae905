"""``m365sync backup | restore | purge | erase``: keeping the data safe, and keeping no more
of it than needed (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365sync.cli._output import Context, JsonOption, err, get_org, out, print_json

app = typer.Typer()


@app.command("backup")
def backup_command(
    path: Annotated[Path, typer.Argument(help="The backup file to write (a new file).")],
) -> None:
    """Copy the SQLite database to PATH while m365sync keeps running (PostgreSQL: use
    pg_dump, see docs/deploy.md)."""
    from m365sync.operations.backup import backup

    with Context(migrated=False) as ctx:
        report = backup(ctx.database, path)
    out.print(
        f"Backed up to {report.path} ({report.size_bytes:,} bytes, schema {report.revision}).",
        highlight=False,
    )
    out.print(
        "Keep the secret key with it (the key file in the data directory, or "
        "M365SYNC_SECRET_KEY): without it, the stored secrets can't be opened.",
        highlight=False,
    )


@app.command("restore")
def restore_command(
    path: Annotated[Path, typer.Argument(help="A file made by m365sync backup.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the database without asking.")
    ] = False,
) -> None:
    """Replace the SQLite database with a backup. Stop every other m365sync process first."""
    from m365sync.operations.backup import restore

    with Context(migrated=False) as ctx:
        url = ctx.database.engine.url.render_as_string(hide_password=True)
        if not yes and not typer.confirm(
            f"Replace everything in {url} with {path}? Other m365sync processes must be stopped."
        ):
            raise typer.Abort()
        report = restore(ctx.database, path)
    out.print(
        f"Restored {report.path} (schema {report.revision}, now upgraded to this version's).",
        highlight=False,
    )


@app.command("purge")
def purge_command(
    bodies_older_than: Annotated[
        int | None,
        typer.Option("--bodies-older-than", min=1, metavar="DAYS", help="Drop email bodies."),
    ] = None,
    activities_older_than: Annotated[
        int | None,
        typer.Option(
            "--activities-older-than",
            min=1,
            metavar="DAYS",
            help="Delete emails, past meetings and completed tasks.",
        ),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option("--org", "-o", help="Only this organization (default: every one)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Keep no more than DAYS days: drop older email bodies (headers stay) or delete older
    activities. Recorded in each organization's audit log."""
    from m365sync.operations.retention import purge

    if bodies_older_than is None and activities_older_than is None:
        err.print(
            "[red]Error:[/] Nothing to purge was named.\n"
            "[bold]Fix:[/] Give --bodies-older-than DAYS, --activities-older-than DAYS, or both."
        )
        raise typer.Exit(2)
    with Context() as ctx, ctx.session() as session:
        organization_id = get_org(session, org).id if org else None
        report = purge(
            session,
            bodies_older_than=bodies_older_than,
            activities_older_than=activities_older_than,
            organization_id=organization_id,
            actor="cli",
        )
    if as_json:
        print_json(
            {
                "organizations": report.organizations,
                "bodies_dropped": report.bodies,
                "activities_deleted": report.activities,
            }
        )
        return
    out.print(
        f"Purged {report.organizations} organization(s): {report.bodies} email bodies dropped, "
        f"{report.activities} activities deleted.",
        highlight=False,
    )


@app.command("erase")
def erase_command(
    email: Annotated[str, typer.Option("--email", help="The person's email address.")],
    org: Annotated[str, typer.Option("--org", "-o", help="Organization slug or id.")],
    as_json: JsonOption = False,
) -> None:
    """Forget one person: their contacts and leads, every activity involving them, their
    bookings. Recorded in the audit log (the address as a hash)."""
    from m365sync.operations.retention import erase

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        report = erase(session, organization.id, email, actor="cli")
    if as_json:
        print_json(
            {
                "activities_deleted": report.activities,
                "people_deleted": report.people,
                "bookings_deleted": report.bookings,
                "quarantined_deleted": report.quarantined,
            }
        )
        return
    out.print(
        f"Erased: {report.people} contact(s) or lead(s), {report.activities} activities, "
        f"{report.bookings} bookings, {report.quarantined} set-aside items.",
        highlight=False,
    )
