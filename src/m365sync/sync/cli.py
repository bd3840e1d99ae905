"""``m365sync sync | status | resync | crm import``: the sync engine from the command line.

Mounted by the main CLI as a group of top-level commands (``app.add_typer(sync_cli.app)``
with no name adds ``sync``, ``status``, ``resync`` and the ``crm`` group). Exit codes:
0 everything synced, 1 some unit failed or is parked, 2 bad arguments.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.base import utcnow
from m365sync.db.migrate import migrate
from m365sync.db.session import Database, database_from_settings
from m365sync.settings import get_settings
from m365sync.sync import service
from m365sync.sync.context import Progress as SyncProgress
from m365sync.sync.models import SyncFeature, SyncUnit, UnitStatus
from m365sync.sync.repository import SyncRepository
from m365sync.workers.process import tune_garbage_collector

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Sync mailboxes into the CRM.")
crm_app = typer.Typer(no_args_is_help=True, help="The embedded CRM store.")
app.add_typer(crm_app, name="crm")
console = Console()

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name.")]
MailboxOption = Annotated[str | None, typer.Option("--mailbox", help="One member's address.")]
FeatureOption = Annotated[
    list[SyncFeature] | None,
    typer.Option("--feature", help="email, calendar or tasks (repeatable)."),
]


def _database() -> Database:
    database = database_from_settings(get_settings())
    migrate(database.engine)
    return database


def _select_units(
    database: Database, org: str | None, mailbox: str | None, features: list[SyncFeature]
) -> list[str]:
    with database.session() as session:
        repo = SyncRepository(session)
        members = repo.find_members(org, mailbox)
        if not members:
            console.print(
                "[red]No member matches.[/red] Check --org and --mailbox (m365sync members list)."
            )
            raise typer.Exit(2)
        return [repo.ensure_unit(m, f).id for m in members for f in features]


@app.command("sync")
def sync_command(
    org: OrgOption = None,
    mailbox: MailboxOption = None,
    feature: FeatureOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Resync from scratch (backfill again).")
    ] = False,
) -> None:
    """Run the selected units now, with progress bars (items, pages, rate)."""
    features = feature or [SyncFeature.EMAIL, SyncFeature.CALENDAR]
    database = _database()
    unit_ids = _select_units(database, org, mailbox, features)
    runtime = ConnectionRuntime.from_settings(get_settings(), database)
    engine = get_settings()
    tune_garbage_collector()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[items]:>8,} items  {task.fields[pages]:>5} pages"),
        TextColumn("{task.fields[rate]:>8,.0f}/s"),
        TimeElapsedColumn(),
    )

    async def run_all(progress: Progress) -> list[service.UnitResult]:
        tasks: dict[str, TaskID] = {}
        started = {unit_id: utcnow() for unit_id in unit_ids}

        def updater(unit_id: str) -> callable:  # type: ignore[valid-type]
            def update(p: SyncProgress) -> None:
                key = unit_id
                if key not in tasks:
                    tasks[key] = progress.add_task(
                        f"{p.mailbox} {p.feature.value}", total=None, items=0, pages=0, rate=0.0
                    )
                elapsed = max(0.001, (utcnow() - started[unit_id]).total_seconds())
                progress.update(tasks[key], items=p.items, pages=p.pages, rate=p.items / elapsed)

            return update

        gate = asyncio.Semaphore(engine.sync_max_parallel_units)

        async def one(unit_id: str) -> service.UnitResult:
            async with gate:
                started[unit_id] = utcnow()
                return await service.run_unit(
                    database,
                    runtime,
                    unit_id,
                    full=full,
                    settings=engine,
                    on_progress=updater(unit_id),
                )

        try:
            return list(await asyncio.gather(*(one(u) for u in unit_ids)))
        finally:
            await runtime.aclose()

    try:
        with Progress(*columns, console=console, transient=False) as progress:
            results = asyncio.run(run_all(progress))
    finally:
        database.dispose()  # a last checkpoint empties SQLite's write-ahead log
    failed = False
    for result in results:
        if result.outcome == "ok":
            console.print(
                f"[green]✓[/green] {result.progress.mailbox} {result.progress.feature.value}: "
                f"{result.progress.items} items, {result.progress.logged} logged, "
                f"{result.progress.pushed} pushed"
            )
        elif result.outcome == "busy":
            console.print(
                f"[yellow]…[/yellow] unit {result.unit_id} is already running elsewhere; skipped."
            )
        else:
            failed = True
            console.print(
                f"[red]✗[/red] {result.progress.mailbox} {result.progress.feature.value}: "
                f"{result.status.value}"
            )
            console.print(f"   {result.error}")
            if result.fix:
                console.print(f"   [bold]Fix:[/bold] {result.fix}")
    raise typer.Exit(1 if failed else 0)


def _status_rows(
    database: Database, org: str | None, mailbox: str | None
) -> list[tuple[str, SyncUnit]]:
    with database.session() as session:
        repo = SyncRepository(session)
        members = {m.id: m.email for m in repo.find_members(org, mailbox)}
        units = repo.units(member_ids=list(members))
        for unit in units:
            session.expunge(unit)
        return [(members[u.member_id], u) for u in units]


@app.command("status")
def status_command(org: OrgOption = None, mailbox: MailboxOption = None) -> None:
    """What each unit is doing, when it last succeeded, and what to fix."""
    database = _database()
    rows = _status_rows(database, org, mailbox)
    # On a narrow terminal, cells wrap instead of being cut short; addresses never break.
    width = max((len(email) for email, _ in rows), default=7)
    table = Table(
        Column("mailbox", no_wrap=True, min_width=width),
        *(
            Column(name, overflow="fold")
            for name in (
                "feature",
                "status",
                "stage",
                "since",
                "failures",
                "last success",
                "logged",
                "next run",
            )
        ),
    )
    problems: list[tuple[str, SyncUnit]] = []
    for email, unit in rows:
        colour = (
            "green"
            if unit.status == UnitStatus.ACTIVE
            else "yellow"
            if not unit.status.parked
            else "red"
        )
        table.add_row(
            email,
            unit.feature.value,
            f"[{colour}]{unit.status.value}[/{colour}]",
            unit.stage.value,
            unit.stage_started_at.strftime("%Y-%m-%d %H:%M"),
            str(unit.failure_count),
            unit.last_success_at.strftime("%Y-%m-%d %H:%M") if unit.last_success_at else "never",
            str((unit.counts or {}).get("total_logged", 0)),
            unit.next_run_at.strftime("%H:%M:%S"),
        )
        if unit.last_error:
            problems.append((email, unit))
    console.print(table)
    for email, unit in problems:
        console.print(f"[bold]{email} {unit.feature.value}[/bold]: {unit.last_error}")
        if unit.last_error_fix:
            console.print(f"   [bold]Fix:[/bold] {unit.last_error_fix}")
    raise typer.Exit(1 if any(u.status.parked for _, u in rows) else 0)


@app.command("resync")
def resync_command(
    mailbox: Annotated[str, typer.Option("--mailbox", help="The member's address.")],
    org: OrgOption = None,
    feature: FeatureOption = None,
) -> None:
    """Force a full resync of one mailbox at its next run (admin)."""
    database = _database()
    features = feature or [SyncFeature.EMAIL, SyncFeature.CALENDAR]
    unit_ids = _select_units(database, org, mailbox, features)
    with database.session() as session:
        repo = SyncRepository(session)
        for unit_id in unit_ids:
            unit = repo.unit(unit_id)
            if unit is not None:
                repo.request_full_resync(unit)
    console.print(f"Full resync requested for {mailbox} ({', '.join(f.value for f in features)}).")


@crm_app.command("import")
def crm_import_command(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV file (docs/crm.md).")
    ],
    org: Annotated[str, typer.Option("--org", help="Organization slug, id or name.")],
    kind: Annotated[str, typer.Option("--kind", help="contacts, leads or accounts.")] = "contacts",
) -> None:
    """Import contacts, leads or accounts from CSV (re-importing updates, never duplicates)."""
    from m365sync.crm.importer import import_csv
    from m365sync.organizations.service import get_organization

    database = _database()
    with database.session() as session:
        organization = get_organization(session, org)
        report = import_csv(session, organization.id, kind, path.read_text(encoding="utf-8-sig"))
    console.print(f"Imported {kind}: {report.created} created, {report.updated} updated.")
    for line, problem in report.errors:
        console.print(f"[red]line {line}[/red]: {problem}")
    raise typer.Exit(1 if report.errors else 0)
