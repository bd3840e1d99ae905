"""``m365sync db upgrade | current``: the database's schema revision."""

from __future__ import annotations

import typer

from m365sync.cli._output import Context, out

app = typer.Typer(help="Database.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (also done on every start). Safe to run
    from several processes at once: one migrates, the others wait for it."""
    from m365sync.db import current_revision

    with Context() as ctx:
        out.print(
            f"Database at revision {current_revision(ctx.database.engine)} "
            f"({ctx.database.engine.url.render_as_string()})."
        )


@app.command("current")
def db_current() -> None:
    from m365sync.db import current_revision, head_revision

    with Context(configure_logging=False, migrated=False) as ctx:
        out.print(f"current: {current_revision(ctx.database.engine)}  head: {head_revision()}")
