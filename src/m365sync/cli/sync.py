"""``m365sync sync | status | resync``: the sync engine from the command line.

Mounted as top-level commands (``app.add_typer(sync.app)`` with no name). Exit codes of
``sync``: 0 every unit that ran synced (units another process was running are listed as
skipped), 1 some unit failed (its status, cause and fix are printed), 2 bad arguments,
3 nothing ran: every selected unit was already running elsewhere. ``status``: 0, or 1 when
a unit is parked.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from m365sync.cli._output import Context, out
from m365sync.sync.features import SyncFeature

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import Progress, TaskID

    from m365sync.sync.context import Progress as SyncProgress
    from m365sync.sync.service import UnitResult

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Sync mailboxes into the CRM.")

EXIT_NOTHING_RAN = 3

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name.")]
MailboxOption = Annotated[str | None, typer.Option("--mailbox", help="One member's address.")]
FeatureOption = Annotated[
    list[SyncFeature] | None,
    typer.Option("--feature", help="email, calendar or tasks (repeatable)."),
]
DEFAULT_FEATURES = [SyncFeature.EMAIL, SyncFeature.CALENDAR]


def _no_member_matches() -> typer.Exit:
    out.print("[red]No member matches.[/red] Check --org and --mailbox (m365sync members list).")
    return typer.Exit(2)


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S UTC") if moment else "soon"


def _report(name: str, result: UnitResult | BaseException) -> str:
    """Print one unit's outcome; returns it (ok, busy, gone or failed)."""
    from m365sync.errors import M365SyncError

    if isinstance(result, BaseException):
        # The run could not even record its outcome (its lease was given back).
        out.print(f"[red]✗[/red] {name}: not synced")
        if isinstance(result, M365SyncError):
            out.print(f"   {result.message}")
            if result.fix:
                out.print(f"   [bold]Fix:[/bold] {result.fix}")
        else:
            out.print(f"   An unexpected error stopped this run: {result!r}.")
            out.print(
                "   [bold]Fix:[/bold] Run it again; if it keeps failing, report this message."
            )
        return "failed"
    if result.outcome == "ok":
        out.print(
            f"[green]✓[/green] {name}: {result.progress.items} items, "
            f"{result.progress.logged} logged, {result.progress.pushed} pushed"
        )
        return "ok"
    if result.outcome == "busy":
        holder = f" by {result.lease_owner}" if result.lease_owner else ""
        out.print(f"[yellow]…[/yellow] {name}: skipped, already running elsewhere{holder}.")
        out.print(
            "   [bold]Fix:[/bold] Wait for that run to finish. If no m365sync is running any "
            f"more (it was stopped), its claim expires by itself at "
            f"{_clock(result.lease_expires_at)}."
        )
        return "busy"
    if result.outcome == "gone":
        out.print(f"[yellow]…[/yellow] {name}: skipped, removed meanwhile.")
        return "gone"
    if result.outcome == "lost":
        out.print(
            f"[yellow]…[/yellow] {name}: handed over to another m365sync process, which "
            "goes on from the last page stored."
        )
        return "busy"
    out.print(f"[red]✗[/red] {name}: {result.status.value}")
    out.print(f"   {result.error}")
    if result.fix:
        out.print(f"   [bold]Fix:[/bold] {result.fix}")
    if not result.status.parked and result.next_run_at is not None:
        out.print(f"   Retried by itself from {_clock(result.next_run_at)}.")
    return "failed"


def _progress_bars(progress: Progress) -> Callable[[str], Callable[[SyncProgress], None]]:
    """For each unit as it starts, the callback that moves its bar (items, pages, rate)."""
    from m365sync.db.base import utcnow

    bars: dict[str, TaskID] = {}

    def for_unit(unit_id: str) -> Callable[[SyncProgress], None]:
        started = utcnow()

        def update(p: SyncProgress) -> None:
            if unit_id not in bars:
                bars[unit_id] = progress.add_task(
                    f"{p.mailbox} {p.feature.value}", total=None, items=0, pages=0, rate=0.0
                )
            elapsed = max(0.001, (utcnow() - started).total_seconds())
            progress.update(bars[unit_id], items=p.items, pages=p.pages, rate=p.items / elapsed)

        return update

    return for_unit


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
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from m365sync.sync import service
    from m365sync.workers.process import tune_garbage_collector

    # The database is disposed of when the command ends: a last checkpoint empties SQLite's
    # write-ahead log.
    with Context(configure_logging=False) as ctx:
        with ctx.session() as session:
            names = service.select_units(session, org, mailbox, feature or DEFAULT_FEATURES)
        if not names:
            raise _no_member_matches()
        unit_ids = list(names)
        tune_garbage_collector(collect=False)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[items]:>8,} items  {task.fields[pages]:>5} pages"),
            TextColumn("{task.fields[rate]:>8,.0f}/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=out, transient=False) as progress:
            results = ctx.run(
                service.run_units(
                    ctx.database,
                    ctx.runtime,
                    unit_ids,
                    full=full,
                    settings=ctx.settings,
                    on_progress=_progress_bars(progress),
                )
            )
    outcomes = [_report(names[u], r) for u, r in zip(unit_ids, results, strict=True)]
    skipped = outcomes.count("busy")
    if skipped:
        out.print(
            f"{skipped} of {len(outcomes)} units skipped: another m365sync process is running them."
        )
    if "failed" in outcomes:
        raise typer.Exit(1)
    if "ok" not in outcomes:
        out.print("Nothing was synced: every selected unit was busy or gone.")
        raise typer.Exit(EXIT_NOTHING_RAN)
    raise typer.Exit(0)


@app.command("status")
def status_command(org: OrgOption = None, mailbox: MailboxOption = None) -> None:
    """What each unit is doing, when it last succeeded, and what to fix."""
    from rich.table import Column, Table

    from m365sync.sync import service
    from m365sync.sync.models import UnitStatus

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        rows = service.unit_statuses(session, org, mailbox)
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
                    "via",
                )
            ),
        )
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
                unit.last_success_at.strftime("%Y-%m-%d %H:%M")
                if unit.last_success_at
                else "never",
                str((unit.counts or {}).get("total_logged", 0)),
                unit.next_run_at.strftime("%H:%M:%S"),
                {"graph": "Graph", "ews": "EWS"}.get(unit.protocol or "", "-"),
            )
        out.print(table)
        for email, unit in rows:
            if unit.last_error:
                out.print(f"[bold]{email} {unit.feature.value}[/bold]: {unit.last_error}")
                if unit.last_error_fix:
                    out.print(f"   [bold]Fix:[/bold] {unit.last_error_fix}")
        parked = any(unit.status.parked for _, unit in rows)
    raise typer.Exit(1 if parked else 0)


@app.command("resync")
def resync_command(
    mailbox: Annotated[str, typer.Option("--mailbox", help="The member's address.")],
    org: OrgOption = None,
    feature: FeatureOption = None,
) -> None:
    """Force a full resync of one mailbox at its next run (admin)."""
    from m365sync.sync import service

    features = feature or DEFAULT_FEATURES
    with Context(configure_logging=False) as ctx, ctx.session() as session:
        units = service.request_full_resyncs(session, org, mailbox, features)
    if not units:
        raise _no_member_matches()
    out.print(f"Full resync requested for {mailbox} ({', '.join(f.value for f in features)}).")
