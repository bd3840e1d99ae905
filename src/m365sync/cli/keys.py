"""``m365sync keys rotate``: the key that encrypts secrets at rest."""

from __future__ import annotations

from typing import Annotated

import typer

from m365sync.cli._output import Context, out

app = typer.Typer(help="The key that encrypts secrets at rest.", no_args_is_help=True)


@app.command("rotate")
def keys_rotate(
    new_key: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_NEW_SECRET_KEY",
            help="With M365SYNC_SECRET_KEY: the new key (base64 of 32 bytes).",
        ),
    ] = None,
) -> None:
    """Re-encrypt every stored secret under a new key."""
    from m365sync.db.sealed import rotate_secret_key

    with Context() as ctx:
        rotation = rotate_secret_key(
            ctx.database, ctx.settings, new_key, new_key_source="--new-key"
        )
    if rotation.key_file is None:
        out.print(
            f"Re-encrypted {rotation.resealed} secrets. Now set M365SYNC_SECRET_KEY to the new "
            "key and restart."
        )
    else:
        out.print(
            f"Re-encrypted {rotation.resealed} secrets under a new key ({rotation.key_file})."
        )
