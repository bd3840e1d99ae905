"""``m365sync salesforce``: Salesforce as the organization's CRM (docs/salesforce.md).

``connect`` signs in (JWT bearer with a private key file, client credentials, or Connect
Salesforce in a browser) and runs Run Test; ``test``, ``connect`` exit 1 when a check
failed. Secrets come from files, options, their environment variables, piped stdin or a
hidden prompt, and are never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365sync.cli._output import (
    Context,
    Exit,
    JsonOption,
    OrgOption,
    get_org,
    out,
    print_json,
    print_table,
    secret_value,
    show,
)

if TYPE_CHECKING:
    from m365sync.crm.salesforce_schemas import SalesforceTestReport

app = typer.Typer(
    help="Salesforce as the CRM: connect, Run Test, members' users, the writer and the mirror.",
    no_args_is_help=True,
)

LoginUrlOption = Annotated[
    str | None,
    typer.Option(
        "--login-url",
        help="https://login.salesforce.com (production), https://test.salesforce.com "
        "(sandbox) or your My Domain https://<name>.my.salesforce.com; default: "
        "M365SYNC_SALESFORCE_LOGIN_URL.",
    ),
]

ICONS = {
    "passed": "[green]✔ passed[/]",
    "failed": "[red]✘ failed[/]",
    "warning": "[yellow]! warning[/]",
    "skipped": "[dim]- skipped[/]",
}


def print_salesforce_report(report: SalesforceTestReport, as_json: bool) -> None:
    """Run Test for Salesforce: the verdict, then one row per check, failures first."""
    from rich.table import Table

    if as_json:
        print_json(report.as_json())
        return
    out.print(report.verdict, highlight=False, markup=False)
    table = Table(title="Run Test for Salesforce")
    for column in ("check", "result", "explanation", "fix"):
        table.add_column(column, overflow="fold")
    for check in report.worst_first():
        table.add_row(check.title, ICONS[check.outcome.value], check.message, check.fix)
    out.print(table)


def _read(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path is not None else None


@app.command("connect")
def connect(
    org: OrgOption,
    consumer_key: Annotated[
        str, typer.Option(help="The connected app's Consumer Key (Manage Consumer Details).")
    ],
    username: Annotated[
        str | None,
        typer.Option(help="JWT bearer: the integration user's Salesforce username."),
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="JWT bearer: PEM file of the private key whose certificate the connected "
            "app holds.",
        ),
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="JWT bearer: that certificate (PEM)."),
    ] = None,
    client_credentials: Annotated[
        bool,
        typer.Option(
            "--client-credentials",
            help="Sign in with the client credentials flow (the connected app's Run As "
            "user; needs the My Domain login URL).",
        ),
    ] = False,
    consumer_secret: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_SALESFORCE_CONSUMER_SECRET",
            show_envvar=True,
            help="The connected app's Consumer Secret (client credentials; prompted, hidden, "
            "if not given).",
        ),
    ] = None,
    web: Annotated[
        bool,
        typer.Option(
            "--web",
            help="Connect Salesforce in a browser: prints the sign-in address; the dashboard's "
            "callback page (or --callback-url) finishes it.",
        ),
    ] = False,
    callback_url: Annotated[
        str | None,
        typer.Option(
            help="Finish Connect Salesforce with the address the browser was sent back to."
        ),
    ] = None,
    login_url: LoginUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Connect the organization to Salesforce and run Run Test (saved only if the sign-in
    works; exits 1 when a check failed)."""
    from urllib.parse import parse_qsl, urlsplit

    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        box, settings = ctx.runtime.box, ctx.settings
        if callback_url:
            query = dict(parse_qsl(urlsplit(callback_url).query))
            _, report = salesforce.complete_connect_salesforce(session, box, settings, query)
        elif web:
            url = salesforce.begin_connect_salesforce(
                session,
                box,
                settings,
                organization.id,
                consumer_key=consumer_key,
                consumer_secret=consumer_secret,
                login_url=login_url,
            )
            if as_json:
                print_json({"authorization_url": url})
            else:
                out.print("Open this address, sign in as the integration user and allow access:")
                out.print(url, soft_wrap=True, highlight=False, markup=False)
            return
        elif client_credentials:
            secret = secret_value(consumer_secret, "Consumer Secret")
            report = salesforce.connect_with_client_credentials(
                session,
                box,
                settings,
                organization.id,
                consumer_key=consumer_key,
                consumer_secret=secret,
                login_url=login_url,
            )
        else:
            report = salesforce.connect_with_jwt(
                session,
                box,
                settings,
                organization.id,
                consumer_key=consumer_key,
                username=username or "",
                private_key_pem=_read(private_key) or "",
                certificate_pem=_read(certificate),
                login_url=login_url,
            )
    print_salesforce_report(report, as_json)
    raise Exit(0 if report.ok else 1)


@app.command("test")
def test(org: OrgOption, as_json: JsonOption = False) -> None:
    """Run Test for Salesforce on the saved connection (exits 1 when a check failed)."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        report = salesforce.run_salesforce_test(
            session, ctx.runtime.box, ctx.settings, get_org(session, org).id
        )
    print_salesforce_report(report, as_json)
    raise Exit(0 if report.ok else 1)


@app.command("status")
def status(org: OrgOption, as_json: JsonOption = False) -> None:
    """The connection: status, user, org, instance, API usage against the share, the
    writer's records per state and what waits for a person."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        organization_id = get_org(session, org).id
        found = salesforce.salesforce_overview(session, organization_id)
        waiting = salesforce.salesforce_backlog(session, organization_id, limit=20)
        share = found.api_share or ctx.settings.salesforce_api_share
    if as_json:
        print_json(
            {
                **found.as_json(),
                "effective_share": share,
                "backlog": [w.as_json() for w in waiting],
            }
        )
        return
    if not found.connected:
        out.print(
            "Salesforce is not connected: run m365sync salesforce connect --org "
            f"{org} --consumer-key ... to connect it."
        )
        return
    assert found.status is not None
    usage = (
        f"{found.api_used:,} of {found.api_limit:,} requests in the last 24 hours"
        if found.api_used is not None and found.api_limit
        else "not read yet"
    )
    rows = [
        ["status", found.status.value + (f": {found.detail} {found.fix}" if found.detail else "")],
        ["signs in as", found.integration_username],
        ["org", found.salesforce_org_id],
        ["instance", found.instance_url],
        ["login URL", found.login_url],
        ["API usage", f"{usage}; m365sync may use {share:.0%}"],
        ["Leads for people who book", "created" if found.create_leads else "not created"],
        ["writer", f"paused until {found.paused_until}: {found.pause_reason}"]
        if found.paused_until
        else ["writer", "running"],
        ["records", ", ".join(f"{k} {v}" for k, v in sorted(found.records.items())) or "none"],
    ]
    print_table("Salesforce", ["", ""], rows)
    if waiting:
        _print_backlog([w.as_json() for w in waiting])


def _print_backlog(rows: list[dict[str, Any]]) -> None:
    print_table(
        "Waiting records",
        ["activity", "member", "subject", "state", "reason", "fix"],
        [
            [r["activity_id"], r["member_email"], r["subject"], r["state"], r["reason"], r["fix"]]
            for r in rows
        ],
    )


@app.command("backlog")
def backlog(
    org: OrgOption,
    member: Annotated[
        str | None, typer.Option(help="Only this member's records (email address or id).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Records parked for a person or waiting for a retry, with the reason and the fix."""
    from m365sync.crm import salesforce_service as salesforce
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        member_id = organizations.get_member(session, organization, member).id if member else None
        rows = [
            w.as_json()
            for w in salesforce.salesforce_backlog(session, organization.id, member_id=member_id)
        ]
    if as_json:
        print_json(rows)
    elif rows:
        _print_backlog(rows)
    else:
        out.print("Nothing waits: every record was written or is on its way.")


@app.command("users")
def users(
    org: OrgOption,
    match: Annotated[
        bool,
        typer.Option("--match", help="Match members to Salesforce users by email address now."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Each member and the Salesforce user their activities belong to."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        organization_id = get_org(session, org).id
        found = (
            salesforce.match_salesforce_users(
                session, ctx.runtime.box, ctx.settings, organization_id
            )
            if match
            else salesforce.salesforce_members(session, organization_id)
        )
        rows = [m.as_json() for m in found]
    show(
        rows,
        as_json,
        "Members and their Salesforce users",
        ["member", "Salesforce user", "name", "chosen by"],
        lambda r: [
            r["email"],
            r["salesforce_username"] or "(none)",
            r["salesforce_name"],
            {"admin": "an admin", "email": "email address"}.get(r["matched_by"] or "", ""),
        ],
    )


@app.command("link")
def link(
    org: OrgOption,
    member: Annotated[str, typer.Argument(help="The member (email address or id).")],
    user: Annotated[
        str, typer.Argument(help="The Salesforce user's id, username or email address.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Choose the member's Salesforce user (kept by later matching)."""
    from m365sync.crm import salesforce_service as salesforce
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        found = salesforce.link_member_to_salesforce_user(
            session,
            ctx.runtime.box,
            ctx.settings,
            organization.id,
            organizations.get_member(session, organization, member).id,
            user,
        )
    if as_json:
        print_json(found.as_json())
    else:
        out.print(f"{found.email} → Salesforce user {found.salesforce_username}.")


@app.command("unlink")
def unlink(
    org: OrgOption,
    member: Annotated[str, typer.Argument(help="The member (email address or id).")],
) -> None:
    """Forget the admin's choice: the member is matched by email address again."""
    from m365sync.crm import salesforce_service as salesforce
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        chosen = organizations.get_member(session, organization, member)
        salesforce.unlink_member_from_salesforce_user(session, organization.id, chosen.id)
    out.print(f"{chosen.email} is matched to a Salesforce user by email address again.")


@app.command("retry")
def retry(
    org: OrgOption,
    activity: Annotated[
        list[str] | None,
        typer.Option(help="A parked record's activity id (repeat it); all parked ones if none."),
    ] = None,
) -> None:
    """Write parked records again (after the rule or field was fixed in Salesforce)."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        count = salesforce.retry_parked_salesforce_records(
            session, get_org(session, org).id, activity or None
        )
    out.print(f"{count} parked record(s) will be written again by the next drain.")


@app.command("drain")
def drain(org: OrgOption, as_json: JsonOption = False) -> None:
    """Write what is due to Salesforce now (the workers do it by themselves too)."""
    from m365sync.crm.salesforce_writer import drain_salesforce

    with Context() as ctx:
        with ctx.session() as session:
            organization_id = get_org(session, org).id
        result = drain_salesforce(
            ctx.database, organization_id, settings=ctx.settings, box=ctx.runtime.box
        )
    if as_json:
        print_json(result.as_json())
    else:
        out.print(
            f"{result.status.value}: {result.written} written, {result.related} related, "
            f"{result.deleted} deleted, {result.retrying} to retry, {result.parked} parked, "
            f"{result.unmatched} unmatched; {result.api_calls} API requests."
        )
        if result.message:
            out.print(f"{result.message} {result.fix}".strip(), highlight=False)
    failed = result.status.value in ("needs_reconnect", "not_connected")
    raise Exit(1 if failed else 0)


@app.command("refresh")
def refresh(org: OrgOption, as_json: JsonOption = False) -> None:
    """Read Salesforce's contacts, leads, accounts and opportunities now (hourly anyway)."""
    from m365sync.crm.salesforce_mirror import refresh_salesforce_people

    with Context() as ctx:
        with ctx.session() as session:
            organization_id = get_org(session, org).id
        result = refresh_salesforce_people(
            ctx.database, organization_id, settings=ctx.settings, box=ctx.runtime.box
        )
    if as_json:
        print_json(result.as_json())
        return
    for label, counts in (
        ("read", result.loaded),
        ("changed", result.changed),
        ("removed", result.removed),
    ):
        if counts:
            out.print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    out.print(f"{result.api_calls} API requests.")


@app.command("share")
def share(
    org: OrgOption,
    percent: Annotated[
        float | None,
        typer.Argument(
            help="Percent of the org's daily API requests m365sync may use (e.g. 50); "
            "leave out to go back to the server's setting."
        ),
    ] = None,
) -> None:
    """How much of the org's daily API requests m365sync may use."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        salesforce.set_salesforce_api_share(
            session, get_org(session, org).id, None if percent is None else percent / 100
        )
        effective = (percent / 100) if percent is not None else ctx.settings.salesforce_api_share
    out.print(f"m365sync may use {effective:.0%} of the org's daily API requests.")


@app.command("create-leads")
def create_leads(
    org: OrgOption,
    enabled: Annotated[
        bool,
        typer.Argument(help="on: create them; off: their meetings wait unresolved."),
    ],
) -> None:
    """Create a Lead for an unknown person who books a meeting (off by default)."""
    from m365sync.crm import salesforce_service as salesforce

    with Context() as ctx, ctx.session() as session:
        salesforce.set_salesforce_lead_creation(session, get_org(session, org).id, enabled)
    out.print(
        "An unknown person who books a meeting now becomes a Salesforce Lead."
        if enabled
        else "No Lead is created for people who book: their meetings wait unresolved."
    )
