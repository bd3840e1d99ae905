"""``m365sync serve``: the web app and JSON API (with the demo tenant when nothing is
configured)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Start m365sim with the demo tenant (default: when nothing is configured).",
        ),
    ] = None,
) -> None:
    """Serve the web app and JSON API (with the demo tenant when nothing is configured)."""
    import logging

    from sqlalchemy.engine import make_url

    from m365sync.demo import serve_app
    from m365sync.settings import get_settings

    settings = get_settings()
    configure_serve_logging(settings.log_level)
    logging.getLogger("m365sync.cli").debug(
        "serve: data directory %s, database %s, Microsoft sign-in %s, Graph %s",
        settings.data_dir.resolve(),
        make_url(settings.resolved_database_url).render_as_string(hide_password=True),
        settings.authority_host,
        settings.graph_url,
    )
    serve_app(host=host, port=port, demo=demo)


def configure_serve_logging(level: str) -> None:
    """The product's own log lines (loggers ``m365sync.*``) at ``level``, on stderr next to
    the web server's and written like them (``INFO:     m365sync.sync.scheduler: ...``).

    Other libraries keep Python's default (warnings and errors only), whatever the level:
    at DEBUG, MSAL and httpx would log requests and token responses. m365sync's own lines
    never carry a secret, a token or an Authorization header, at any level.
    """
    import logging
    import sys

    from uvicorn.config import LOG_LEVELS
    from uvicorn.logging import DefaultFormatter

    from m365sync.errors import ValidationFailed

    number = LOG_LEVELS.get(level.strip().lower())
    if number is None:
        raise ValidationFailed(
            f"'{level}' is not a log level (M365SYNC_LOG_LEVEL).",
            fix="Set M365SYNC_LOG_LEVEL to DEBUG, INFO, WARNING or ERROR.",
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    product = logging.getLogger("m365sync")
    for old in list(product.handlers):
        product.removeHandler(old)
    product.addHandler(handler)
    product.setLevel(number)
    product.propagate = False
