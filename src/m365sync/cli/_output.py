"""What every command shares: the context it works in (settings, database, connection
runtime), the ``--org`` and ``--json`` options, and how answers, errors and exit codes are
written.

Imported when the CLI starts, so it imports nothing heavy itself: the database layer,
Microsoft's clients and the services are imported by the code that uses them, when a
command runs.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from m365sync.errors import M365SyncError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.organizations.models import Organization

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

OrgOption = Annotated[
    str, typer.Option("--org", "-o", help="Organization slug or id.", envvar="M365SYNC_ORG")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Exit(Exception):
    """End the command with ``code`` after its answer is printed (no error message)."""

    def __init__(self, code: int) -> None:
        self.code = code


def cli_fix(error: M365SyncError) -> str | None:
    """The error's fix in the command line's words: services say what to give in words of
    no door; where a flag or an environment variable gives it, say which."""
    from m365sync.connections.errors import (
        DraftIncomplete,
        NoDomains,
        RunTestFailed,
        UserAppNotConfigured,
    )
    from m365sync.microsoft.errors import AccessDeniedByPolicy

    if isinstance(error, RunTestFailed):
        return f"{error.fix} To save it anyway, run the same command with --partial."
    if isinstance(error, DraftIncomplete):
        flags = {
            "client_id": "--client-id",
            "credential": "--secret (or M365SYNC_CLIENT_SECRET) or --certificate",
            "test_mailbox": "--test-mailbox",
            "username": "--username",
            "password": "--password (or M365SYNC_EXCHANGE_PASSWORD)",
        }
        return f"Give {', '.join(flags[m] for m in error.missing)}. {error.fix}"
    if isinstance(error, NoDomains):
        return "Add your domains to sync first: m365sync domains add --org <org> contoso.com"
    if isinstance(error, AccessDeniedByPolicy):
        return (
            f"{error.fix} Show them with: m365sync access-policy commands --org <org> "
            "--account <service account id> --group <group address>"
        )
    if isinstance(error, UserAppNotConfigured):
        return (
            "Set M365SYNC_USER_APP_CLIENT_ID and M365SYNC_USER_APP_CLIENT_SECRET to the app "
            "registration users sign in to (see docs/connections.md)."
        )
    return error.fix


def exit_code_for(error: M365SyncError) -> int:
    """1 for a failure (a Run Test that found a problem, Microsoft, the server's own
    trouble), 2 for usage and validation (the request itself was wrong)."""
    from m365sync.connections.errors import RunTestFailed
    from m365sync.microsoft.errors import MicrosoftError

    if isinstance(error, MicrosoftError | RunTestFailed):
        return 1
    return 2 if error.status < 500 else 1


def print_error(error: M365SyncError) -> None:
    """The cause and the fix (in the command line's words) on stderr, with the failed checks
    of a Run Test if any."""
    err.print(f"[red]Error:[/] {error.message}", highlight=False)
    fix = cli_fix(error)
    if fix:
        err.print(f"[bold]Fix:[/] {fix}", highlight=False)
    report = getattr(error, "report", None)
    if report is None:
        return
    for check in report.checks:
        if check.outcome.value in ("failed", "warning"):
            err.print(
                f"  {check.outcome.value}: {check.title}: {check.message} {check.fix}",
                highlight=False,
                markup=False,
            )


# -- context ---------------------------------------------------------------------------------


class Context:
    """What one command works with: the settings, the database (migrated to the newest
    schema unless ``migrated=False``) and, on first use, the connection runtime.

    Opened with ``with Context() as ctx:``; leaving the block disposes of the database, which
    stops its WAL checkpointer thread with a last checkpoint. ``configure_logging=False``
    leaves Python's logging as it is (the sync commands draw progress bars instead).
    """

    def __init__(self, *, configure_logging: bool = True, migrated: bool = True) -> None:
        from m365sync.db import database_from_settings, migrate
        from m365sync.settings import get_settings

        self.settings = get_settings()
        if configure_logging:
            _configure_logging(self.settings.log_level)
        self.database = database_from_settings(self.settings)
        self._runtime: ConnectionRuntime | None = None
        if migrated:
            try:
                migrate(self.database.engine)
            except BaseException:
                self.database.dispose()
                raise
        gc.enable()  # off while the command loaded what it runs (``m365sync.cli.main``)

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.database.dispose()

    @property
    def runtime(self) -> ConnectionRuntime:
        if self._runtime is None:
            from m365sync.connections.runtime import ConnectionRuntime

            self._runtime = ConnectionRuntime.from_settings(self.settings, self.database)
        return self._runtime

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that commits when the block ends (the command is the boundary)."""
        with self.database.session() as session:
            yield session

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on an event loop of its own; the Graph clients made on that loop are
        closed before it ends."""
        import asyncio

        async def then_close() -> T:
            try:
                return await work
            finally:
                if self._runtime is not None:
                    await self._runtime.aclose()

        return asyncio.run(then_close())


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "httpx", "httpcore", "msal"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def get_org(session: Session, key: str) -> Organization:
    """The organization ``--org`` names (slug or id)."""
    from m365sync.organizations import service as organizations

    return organizations.get_organization(session, key)


# -- answers ---------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)


def show(
    rows: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: list[str],
    cells: Callable[[dict[str, Any]], list[Any]],
) -> None:
    """A list command's answer: the rows as JSON for scripts (``--json``), else a table
    whose ``cells`` say how each row reads to a person."""
    if as_json:
        print_json(rows)
    else:
        print_table(title, columns, [cells(row) for row in rows])


def secret_value(value: str | None, prompt: str) -> str:
    """A secret from its option or environment variable, else one line of piped stdin, else
    a hidden prompt; never echoed."""
    if value:
        return value
    if not sys.stdin.isatty():
        text = sys.stdin.readline().strip()
        if text:
            return text
    return str(typer.prompt(prompt, hide_input=True))
