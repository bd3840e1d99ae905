"""Starting ``m365sync`` is cheap: loading the command line (all of it, as ``--help`` does)
imports typer and rich, never the database layer, Microsoft's clients, the web stack or
the workers. Each command imports those when it runs. Not a timed test: it checks what is
loaded, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from support.imports import loaded_modules

HEAVY = (
    "sqlalchemy",
    "alembic",
    "msal",
    "celery",
    "kombu",
    "redis",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "httpcore",
    "exchangelib",
    "simple_salesforce",
    "cryptography",
    "pydantic",
    "pydantic_settings",
    "psycopg",
    "m365sim",
    "sfsim",
)


def test_importing_the_command_line_loads_nothing_heavy() -> None:
    loaded = loaded_modules("import m365sync.cli")

    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert "m365sync.cli.sync" in loaded  # every command module is there, cheaply
    assert {m for m in loaded if m.startswith("m365sync.")} <= {
        "m365sync.cli",
        "m365sync.cli._output",
        "m365sync.cli.connections",
        "m365sync.cli.crm",
        "m365sync.cli.db",
        "m365sync.cli.keys",
        "m365sync.cli.operations",
        "m365sync.cli.organizations",
        "m365sync.cli.salesforce",
        "m365sync.cli.serve",
        "m365sync.cli.sync",
        "m365sync.cli.unresolved",
        "m365sync.errors",
        "m365sync.sync",
        "m365sync.sync.features",
    }


def test_help_builds_every_command_without_loading_anything_heavy() -> None:
    """``m365sync --help`` builds every command and option (the ``--feature`` choices
    included) from the modules above alone."""
    loaded = loaded_modules(
        "import contextlib, io\n"
        "from m365sync.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['sync', '--help'])\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )

    # typer itself checks option values with pydantic once a command is chosen
    heavy = set(HEAVY) - {"pydantic"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_python_dash_m_runs_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "m365sync", "--help"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "service-accounts" in result.stdout and "resync" in result.stdout


def test_a_sync_command_loads_only_what_a_sync_uses() -> None:
    """``m365sync sync`` needs the database, MSAL and Graph's client; not Alembic (the
    schema check is one SELECT), DNS, the web stack, Celery, EWS, Salesforce, or X.509 and
    a JWT library (about 20 ms: a token's claims are read as the JSON they are, and
    certificates are loaded only by the commands that make or read one)."""
    loaded = loaded_modules(
        "import m365sync.cli.sync, m365sync.db, m365sync.sync.service, m365sync.sync.email\n"
        "import m365sync.connections.runtime, m365sync.workers.process"
    )

    unused = {
        "alembic",
        "dns",
        "fastapi",
        "starlette",
        "uvicorn",
        "jinja2",
        "celery",
        "kombu",
        "redis",
        "exchangelib",
        "simple_salesforce",
        "argon2",
        "m365sim",
        "sfsim",
        "jwt",
        "cryptography.x509",
    }
    assert loaded.isdisjoint(unused), sorted(loaded & unused)


def test_every_option_and_argument_of_every_command_says_what_it_is():
    """``--help`` describes each option and argument (an option without help text prints a
    bare name)."""
    import click
    import typer.main

    from m365sync.cli import app

    silent: list[str] = []

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
            return
        silent.extend(
            f"{path} {param.name}"
            for param in command.params
            if param.name != "help" and not getattr(param, "help", None)
        )

    walk(typer.main.get_command(app), "m365sync")
    assert silent == []


def test_a_command_loads_with_the_cyclic_collector_off_and_runs_with_it_on(tmp_path) -> None:
    """The collector is off while a command imports what it runs (it would walk those
    objects again and again) and back on once the command opens the database, so a long
    command never runs without it."""
    script = (
        "import gc\n"
        "from m365sync.cli import app, main\n"
        "@app.command('probe')\n"
        "def probe() -> None:\n"
        "    from m365sync.cli._output import Context\n"
        "    print('loading', gc.isenabled())\n"
        "    with Context():\n"
        "        print('running', gc.isenabled())\n"
        "main(['probe'])\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("M365SYNC_")},
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["loading", "False", "running", "True"]
