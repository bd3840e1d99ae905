"""``m365sync``: the command line, one module per capability.

Exit codes scripts can trust: 0 success; 1 failure (a Run Test that found a problem, a
Microsoft error, anything unexpected); 2 usage or validation (bad arguments, unknown
organization or member, duplicate, a precondition such as "no domains"); 3 ``sync`` only:
nothing ran, every selected unit was running elsewhere. Errors go to stderr as the cause
and the fix; results go to stdout (rich tables, or ``--json``). Secrets are read from
prompts (hidden), environment variables or files, never printed.

Starting is cheap: the command modules import only typer and rich when loaded, and each
command imports the database layer, Microsoft's clients and the services it calls when it
runs (``tests/m365sync/cli/test_startup.py`` keeps it so).
"""

from __future__ import annotations

import gc
import sys

import typer

from m365sync.cli import (
    connections,
    crm,
    db,
    keys,
    operations,
    organizations,
    salesforce,
    serve,
    sync,
    unresolved,
)
from m365sync.cli._output import Exit, cli_fix, err, exit_code_for, print_error
from m365sync.errors import M365SyncError

__all__ = ["app", "cli_fix", "main"]

app = typer.Typer(
    help="m365sync: sync Microsoft 365 mailboxes with your CRM.", no_args_is_help=True
)
app.add_typer(serve.app)  # unnamed: ``serve`` at the top
app.add_typer(organizations.orgs_app, name="orgs")
app.add_typer(organizations.domains_app, name="domains")
app.add_typer(organizations.members_app, name="members")
app.add_typer(connections.accounts_app, name="service-accounts")
app.add_typer(connections.policy_app, name="access-policy")
app.add_typer(connections.connections_app, name="connections")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(organizations.tokens_app, name="api-tokens")
app.add_typer(sync.app)  # unnamed: ``sync``, ``status``, ``resync`` at the top
app.add_typer(crm.app, name="crm")
app.add_typer(salesforce.app, name="salesforce")
app.add_typer(unresolved.app, name="unresolved")
app.add_typer(operations.app)  # unnamed: ``backup``, ``restore``, ``purge``, ``erase``


def main(argv: list[str] | None = None) -> None:
    # A command's first work is importing what it runs (SQLAlchemy and the models, MSAL,
    # httpx): a few hundred thousand objects that live as long as the process. The cyclic
    # garbage collector would walk them again and again while they load, about 0.1 s of a
    # command's start. It stays off until the command has loaded them: ``Context`` (every
    # command that opens the database) and ``tune_garbage_collector`` (``sync`` and the
    # long-running processes) turn it back on.
    gc.disable()
    try:
        # Outside standalone mode click returns a ``typer.Exit``'s code instead of exiting.
        returned = app(args=argv, standalone_mode=False)
    except Exit as exc:
        sys.exit(exc.code)
    except M365SyncError as exc:
        print_error(exc)
        sys.exit(exit_code_for(exc))
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"Error: {exc}", highlight=False, markup=False)
        sys.exit(int(getattr(exc, "exit_code", 2) or 2))
    sys.exit(returned if isinstance(returned, int) else 0)
