"""The processes an operator runs.

- ``m365sync serve``: everything in one process (the web app, JSON API, webhooks and
  in-process sync workers; the demo tenant when nothing is configured). All a small team
  needs.
- Scaled out (docs/deploy.md), on PostgreSQL and Redis:
  ``m365sync web`` (the dashboard, JSON API and change notifications; any number),
  ``m365sync scheduler`` (queues due units, renews subscriptions, recovers bookings; run
  two, one is elected) and ``m365sync worker`` (Celery workers that run the units; any
  number).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from m365sync.settings import Settings

app = typer.Typer()

HostOption = Annotated[str | None, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on.")]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve this process's Prometheus metrics on this port (M365SYNC_METRICS_PORT).",
    ),
]


@app.command("serve")
def serve(
    host: HostOption = None,
    port: PortOption = None,
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
    configure_serve_logging(settings.log_level, settings.log_format)
    logging.getLogger("m365sync.cli").debug(
        "serve: data directory %s, database %s, Microsoft sign-in %s, Graph %s",
        settings.data_dir.resolve(),
        make_url(settings.resolved_database_url).render_as_string(hide_password=True),
        settings.authority_host,
        settings.graph_url,
    )
    serve_app(host=host, port=port, demo=demo)


@app.command("web")
def web(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the dashboard, JSON API and change notifications, handing sync work to the
    Celery workers (scaled out: run m365sync scheduler and m365sync worker too)."""
    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.db import database_from_settings, migrate
    from m365sync.demo import browser_url, listen_socket, run_web_server
    from m365sync.web.app import create_app
    from m365sync.workers.process import HeldStop

    settings = _process_settings(host=host, port=port)
    # Bound before the migrations: a busy port is said at once, and --port 0 becomes the
    # port this process really listens on (printed below).
    listener = listen_socket(settings.host, settings.port, command="web")
    settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    database = database_from_settings(settings)
    try:
        migrate(database.engine)
        runtime = ConnectionRuntime.from_settings(settings, database, share_graph_limits=True)
        application = create_app(
            settings=settings,
            database=database,
            runtime=runtime,
            workers="celery",
            recover_bookings=False,
        )
        # From the banner on, Ctrl+C is held until the server runs, never lost (HeldStop).
        with HeldStop() as stop:
            typer.echo(
                f"m365sync web is running: open {browser_url(settings)} "
                "(sync work goes to the Celery workers)."
            )
            run_web_server(application, settings, listener, stop)
    finally:
        database.dispose()
        listener.close()


@app.command("scheduler")
def scheduler(metrics_port: MetricsPortOption = None) -> None:
    """Queue due sync units and Salesforce's mirror and writer on the Celery workers, renew
    change-notification subscriptions and recover bookings left pending. Run two for
    availability: one leads (elected through the database), the other takes over when it
    stops."""
    import asyncio
    import logging
    import signal

    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.db import database_from_settings, migrate
    from m365sync.workers.celery_app import queue_length, queue_salesforce_job, queue_unit
    from m365sync.workers.process import tune_garbage_collector
    from m365sync.workers.scheduler import ElectedScheduler, scale_out_jobs

    settings = _process_settings()
    _serve_metrics(metrics_port or settings.metrics_port, multiprocess=False)
    database = database_from_settings(settings)
    try:
        migrate(database.engine)
        runtime = ConnectionRuntime.from_settings(settings, database, share_graph_limits=True)
        elected = ElectedScheduler(
            database,
            settings,
            scale_out_jobs(
                database,
                runtime,
                settings,
                queue=queue_unit,
                queue_length=queue_length,
                queue_salesforce=queue_salesforce_job,
            ),
        )
        logging.getLogger("m365sync.cli").info(
            "scheduler %s: standing for election (every %.0f s)",
            elected.owner,
            elected.renew_seconds,
        )
        tune_garbage_collector()

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, stop.set)
            try:
                await elected.run_forever(stop)
            finally:
                await runtime.aclose()

        asyncio.run(run())
    finally:
        database.dispose()


@app.command("worker")
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Units run at once: pool processes (M365SYNC_WORKER_CONCURRENCY)."),
    ] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run sync units from the Celery queue (Redis), with the product's settings: late
    acknowledgement, re-queue on a lost worker, one message at a time per process."""
    import os
    import socket

    settings = _process_settings()
    port = metrics_port or settings.metrics_port
    if port:
        # Before anything imports prometheus_client: the pool processes then write their
        # counts to files there, which this process adds up when scraped.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="m365sync-metrics-")
    _serve_metrics(port, multiprocess=True)

    import logging

    from m365sync.db import database_from_settings, migrate
    from m365sync.workers.celery_app import app as celery
    from m365sync.workers.process import tune_garbage_collector

    # Celery sets the root logger's level; other libraries stay at warnings and errors.
    for noisy in ("httpx", "httpcore", "msal", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    database = database_from_settings(settings)
    try:
        migrate(database.engine)
    finally:
        database.dispose()  # each pool process opens its own
    tune_garbage_collector()  # this process supervises the pool as long as it runs
    celery.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log_level.upper(),
            "--concurrency",
            str(concurrency or settings.worker_concurrency),
            "--queues",
            settings.celery_queue,
            "--hostname",
            f"m365sync-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _process_settings(*, host: str | None = None, port: int | None = None) -> Settings:
    from m365sync.settings import get_settings

    settings = get_settings()
    if host is not None or port is not None:
        settings = settings.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
    configure_serve_logging(settings.log_level, settings.log_format)
    return settings


def _serve_metrics(port: int | None, *, multiprocess: bool) -> None:
    if not port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if multiprocess:
        from prometheus_client import multiprocess as shared

        registry = CollectorRegistry()
        shared.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, registry=registry)


def configure_serve_logging(level: str, log_format: str = "text") -> None:
    """The product's own log lines (loggers ``m365sync.*``) at ``level``, on stderr next to
    the web server's and written like them (``INFO:     m365sync.sync.scheduler: ...``),
    or as one JSON object a line (``log_format`` json; ``m365sync.logs``).

    Other libraries keep Python's default (warnings and errors only), whatever the level:
    at DEBUG, MSAL and httpx would log requests and token responses. m365sync's own lines
    never carry a secret, a token or an Authorization header, at any level.
    """
    from uvicorn.logging import DefaultFormatter

    from m365sync.logs import configure_product_logging

    configure_product_logging(
        level, log_format, DefaultFormatter("%(levelprefix)s %(name)s: %(message)s")
    )
