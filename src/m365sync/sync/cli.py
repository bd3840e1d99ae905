"""``m365sync sync | status | resync | crm import``: the sync engine from the command line.

Mounted by the main CLI as a group of top-level commands (``app.add_typer(sync_cli.app)``
with no name adds ``sync``, ``status``, ``resync`` and the ``crm`` group). Exit codes of
``sync``: 0 every unit that ran synced (units another process was running are listed as
skipped), 1 some unit failed (its status, cause and fix are printed), 2 bad arguments,
3 nothing ran: every selected unit was already running elsewhere. ``status``: 0, or 1 when
a unit is parked.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
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
from m365sync.errors import M365SyncError
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
log = logging.getLogger(__name__)

EXIT_NOTHING_RAN = 3

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
) -> dict[str, str]:
    """The selected units' ids, each with how people name it ("adele@contoso.com email")."""
    with database.session() as session:
        repo = SyncRepository(session)
        members = repo.find_members(org, mailbox)
        if not members:
            console.print(
                "[red]No member matches.[/red] Check --org and --mailbox (m365sync members list)."
            )
            raise typer.Exit(2)
        return {
            repo.ensure_unit(m, f).id: f"{m.email} {f.value}" for m in members for f in features
        }


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S UTC") if moment else "soon"


def _report(name: str, result: service.UnitResult | BaseException) -> str:
    """Print one unit's outcome; returns it (ok, busy, gone or failed)."""
    if isinstance(result, BaseException):
        # The run could not even record its outcome (its lease was given back).
        console.print(f"[red]✗[/red] {name}: not synced")
        if isinstance(result, M365SyncError):
            console.print(f"   {result.message}")
            if result.fix:
                console.print(f"   [bold]Fix:[/bold] {result.fix}")
        else:
            console.print(f"   An unexpected error stopped this run: {result!r}.")
            console.print(
                "   [bold]Fix:[/bold] Run it again; if it keeps failing, report this message."
            )
        return "failed"
    if result.outcome == "ok":
        console.print(
            f"[green]✓[/green] {name}: {result.progress.items} items, "
            f"{result.progress.logged} logged, {result.progress.pushed} pushed"
        )
        return "ok"
    if result.outcome == "busy":
        holder = f" by {result.lease_owner}" if result.lease_owner else ""
        console.print(f"[yellow]…[/yellow] {name}: skipped, already running elsewhere{holder}.")
        console.print(
            "   [bold]Fix:[/bold] Wait for that run to finish. If no m365sync is running any "
            f"more (it was stopped), its claim expires by itself at "
            f"{_clock(result.lease_expires_at)}."
        )
        return "busy"
    if result.outcome == "gone":
        console.print(f"[yellow]…[/yellow] {name}: skipped, removed meanwhile.")
        return "gone"
    if result.outcome == "lost":
        console.print(
            f"[yellow]…[/yellow] {name}: handed over to another m365sync process, which "
            "goes on from the last page stored."
        )
        return "busy"
    console.print(f"[red]✗[/red] {name}: {result.status.value}")
    console.print(f"   {result.error}")
    if result.fix:
        console.print(f"   [bold]Fix:[/bold] {result.fix}")
    if not result.status.parked and result.next_run_at is not None:
        console.print(f"   Retried by itself from {_clock(result.next_run_at)}.")
    return "failed"


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
    names = _select_units(database, org, mailbox, features)
    unit_ids = list(names)
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

    async def run_all(progress: Progress) -> list[service.UnitResult | BaseException]:
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
                try:
                    return await service.run_unit(
                        database,
                        runtime,
                        unit_id,
                        full=full,
                        settings=engine,
                        on_progress=updater(unit_id),
                    )
                except Exception:
                    log.debug("sync of %s stopped", names[unit_id], exc_info=True)
                    raise

        try:
            # One unit's failure never stops the others: each ends with its own outcome.
            return list(await asyncio.gather(*(one(u) for u in unit_ids), return_exceptions=True))
        finally:
            await runtime.aclose()

    try:
        with Progress(*columns, console=console, transient=False) as progress:
            results = asyncio.run(run_all(progress))
    finally:
        database.dispose()  # a last checkpoint empties SQLite's write-ahead log
    outcomes = [_report(names[u], r) for u, r in zip(unit_ids, results, strict=True)]
    skipped = outcomes.count("busy")
    if skipped:
        console.print(
            f"{skipped} of {len(outcomes)} units skipped: another m365sync process is running them."
        )
    if "failed" in outcomes:
        raise typer.Exit(1)
    if "ok" not in outcomes:
        console.print("Nothing was synced: every selected unit was busy or gone.")
        raise typer.Exit(EXIT_NOTHING_RAN)
    raise typer.Exit(0)


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
