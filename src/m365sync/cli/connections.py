"""``m365sync service-accounts | access-policy | connections``: how mailboxes are reached.

Run Test reports print as a table (or ``--json``); ``service-accounts test`` exits 1 when a
required check fails. Secrets come from options, their environment variables, piped stdin
or a hidden prompt, and are never printed.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
    from m365sync.connections.run_test import TestReport

accounts_app = typer.Typer(
    help="Service accounts (Office 365 app registrations, Exchange).", no_args_is_help=True
)
policy_app = typer.Typer(help="Limit a service account to some mailboxes.", no_args_is_help=True)
connections_app = typer.Typer(help="Mailbox connections.", no_args_is_help=True)


def print_report(report: TestReport, as_json: bool) -> None:
    """A Run Test report: one row per check with its explanation and fix."""
    from rich.table import Table

    if as_json:
        print_json(report.as_json())
        return
    icons = {
        "passed": "[green]✔ passed[/]",
        "failed": "[red]✘ failed[/]",
        "warning": "[yellow]! warning[/]",
        "skipped": "[dim]- skipped[/]",
    }
    table = Table(title="Run Test")
    for column in ("check", "result", "explanation", "fix"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(check.title, icons[check.outcome.value], check.message, check.fix)
    out.print(table)
    features = ", ".join(f.value for f in report.enabled_features) or "none"
    out.print(
        f"Features: {features}. "
        + ("[green]Ready to save.[/]" if report.ok else "[red]A required check failed.[/]")
    )


def _expiry(value: datetime | None) -> datetime | None:
    """A YYYY-MM-DD option as the start of that day in UTC."""
    return value.replace(tzinfo=UTC) if value else None


# -- service accounts ------------------------------------------------------------------------


ACCOUNT_ARG = Annotated[
    str, typer.Argument(help="The service account's id (m365sync service-accounts list).")
]
PARTIAL_HELP = "Save even if a required check fails, with the failing features off."


@accounts_app.command("list")
def accounts_list(org: OrgOption, as_json: JsonOption = False) -> None:
    from m365sync.connections import service_accounts

    with Context() as ctx, ctx.session() as session:
        now = datetime.now(UTC)
        rows = [
            service_accounts.service_account_view(
                account, now, ctx.settings.secret_expiry_warning_days
            )
            for account in service_accounts.list_service_accounts(session, get_org(session, org))
        ]
    if as_json:
        for row in rows:
            row.pop("certificate_pem", None)
        print_json(rows)
        return
    print_table(
        "Service accounts",
        ["id", "name", "kind", "tenant", "features", "secret expiry", "status"],
        [
            [
                r["id"],
                r["name"],
                r["kind"],
                r["tenant_id"],
                ", ".join(k for k, v in r["features"].items() if v["enabled"]) or "none",
                r["secret_expiry"]["message"] or (r["secret_expires_at"] or ""),
                r["status"]
                + (f": {r['status_detail']} {r['status_fix']}" if r["status_detail"] else ""),
            ]
            for r in rows
        ],
    )


@accounts_app.command("add")
def accounts_add(
    org: OrgOption,
    client_id: Annotated[str, typer.Option(help="Application (client) ID.")],
    test_mailbox: Annotated[str, typer.Option(help="A mailbox in your domains to test with.")],
    name: Annotated[str, typer.Option(help="A name for the list.")] = "Office 365 service account",
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_CLIENT_SECRET",
            help="The secret's Value (prompted, hidden, if not given).",
            show_envvar=True,
        ),
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="PEM (key + certificate) or PFX file instead of a secret.")
    ] = None,
    certificate_password: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_CERTIFICATE_PASSWORD", help="The PFX file's password, if it has one."
        ),
    ] = None,
    tenant_id: Annotated[
        str | None, typer.Option(help="Overrides the tenant found from your domains.")
    ] = None,
    secret_expires: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="When the secret expires (YYYY-MM-DD)."),
    ] = None,
    partial: Annotated[
        bool, typer.Option(help="Save even if a required check fails (features stay off).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run Test, then save an Office 365 service account."""
    from m365sync.connections import service_accounts
    from m365sync.connections.run_test import ServiceAccountDraft
    from m365sync.microsoft.auth import ClientSecret, Credential, load_certificate

    with Context() as ctx:
        credential: Credential
        if certificate is not None:
            credential = load_certificate(certificate.read_bytes(), certificate_password)
        else:
            credential = ClientSecret(secret_value(secret, "Client secret Value"))
        draft = ServiceAccountDraft(
            client_id=client_id,
            credential=credential,
            test_mailbox=test_mailbox,
            tenant_id=tenant_id,
            name=name,
            secret_expires_at=_expiry(secret_expires),
        )
        with ctx.session() as session:
            account, report = ctx.run(
                service_accounts.add_service_account(
                    session, ctx.runtime, get_org(session, org), draft, partial=partial
                )
            )
            print_report(report, as_json)
            if not as_json:
                out.print(
                    f"Saved service account [bold]{account.name}[/] (id {account.id}, status "
                    f"{account.status.value})."
                )


@accounts_app.command("generate-certificate")
def accounts_generate_certificate(
    org: OrgOption,
    name: Annotated[str, typer.Option(help="A name for the list.")] = "Office 365 service account",
) -> None:
    """Create a key pair here and print the certificate to upload to the app registration."""
    from m365sync.connections import service_accounts

    with Context() as ctx, ctx.session() as session:
        account = service_accounts.create_certificate_account(
            session, ctx.runtime, get_org(session, org), name=name
        )
        out.print(
            "Upload this certificate in the Microsoft Entra admin center: App registrations → "
            "your app → "
            "Certificates & secrets → Certificates → Upload certificate. Then run:\n"
            f"  m365sync service-accounts complete --org {org} {account.id} --client-id "
            "<Application ID> --test-mailbox <address>\n"
        )
        typer.echo(account.certificate_pem)
        out.print(f"Thumbprint: {account.certificate_thumbprint}")


@accounts_app.command("complete")
def accounts_complete(
    org: OrgOption,
    account_id: ACCOUNT_ARG,
    client_id: Annotated[str, typer.Option(help="Application (client) ID.")],
    test_mailbox: Annotated[str, typer.Option(help="A mailbox in your domains to test with.")],
    tenant_id: Annotated[
        str | None, typer.Option(help="Overrides the tenant found from your domains.")
    ] = None,
    partial: Annotated[bool, typer.Option(help=PARTIAL_HELP)] = False,
    as_json: JsonOption = False,
) -> None:
    """Finish a service account created with generate-certificate: Run Test and save."""
    from m365sync.connections import service_accounts

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        report = ctx.run(
            service_accounts.complete_certificate_account(
                session,
                ctx.runtime,
                organization,
                account,
                client_id=client_id,
                test_mailbox=test_mailbox,
                tenant_id=tenant_id,
                partial=partial,
            )
        )
        print_report(report, as_json)


@accounts_app.command("test")
def accounts_test(
    org: OrgOption,
    account_id: Annotated[
        str | None, typer.Argument(help="A saved service account; omit to test a draft.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="Draft: Application (client) ID.")] = None,
    secret: Annotated[
        str | None, typer.Option(envvar="M365SYNC_CLIENT_SECRET", help="Draft: the secret's Value.")
    ] = None,
    tenant_id: Annotated[
        str | None, typer.Option(help="Draft: overrides the tenant found from your domains.")
    ] = None,
    test_mailbox: Annotated[
        str | None, typer.Option(help="A mailbox in your domains to test with.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run Test (read-only). Exit code 1 if a required check fails."""
    from m365sync.connections import service_accounts
    from m365sync.connections.run_test import ServiceAccountDraft
    from m365sync.microsoft.auth import ClientSecret

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        if account_id:
            account = service_accounts.get_service_account(session, organization, account_id)
            report = ctx.run(
                service_accounts.retest_service_account(
                    session, ctx.runtime, organization, account, test_mailbox=test_mailbox
                )
            )
        else:
            if not client_id or not test_mailbox:
                raise typer.BadParameter(
                    "Give a saved account's id, or --client-id, --test-mailbox and the secret."
                )
            draft = ServiceAccountDraft(
                client_id=client_id,
                credential=ClientSecret(secret_value(secret, "Client secret Value")),
                test_mailbox=test_mailbox,
                tenant_id=tenant_id,
            )
            report = ctx.run(service_accounts.test_draft(session, ctx.runtime, organization, draft))
    print_report(report, as_json)
    if not report.ok:
        raise Exit(1)


@accounts_app.command("replace-secret")
def accounts_replace_secret(
    org: OrgOption,
    account_id: ACCOUNT_ARG,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_CLIENT_SECRET",
            help="The new secret's Value (prompted, hidden, if not given).",
        ),
    ] = None,
    secret_expires: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="When the new secret expires (YYYY-MM-DD)."),
    ] = None,
    partial: Annotated[bool, typer.Option(help=PARTIAL_HELP)] = False,
    as_json: JsonOption = False,
) -> None:
    """A new client secret (tested before it replaces the old one)."""
    from m365sync.connections import service_accounts

    with Context() as ctx:
        value = secret_value(secret, "New client secret Value")
        with ctx.session() as session:
            organization = get_org(session, org)
            account = service_accounts.get_service_account(session, organization, account_id)
            report = ctx.run(
                service_accounts.replace_secret(
                    session,
                    ctx.runtime,
                    organization,
                    account,
                    secret=value,
                    secret_expires_at=_expiry(secret_expires),
                    partial=partial,
                )
            )
    print_report(report, as_json)


@accounts_app.command("test-exchange")
def accounts_test_exchange(
    org: OrgOption,
    username: Annotated[str, typer.Option(help="The impersonation account (user@domain).")],
    test_mailbox: Annotated[str, typer.Option(help="A mailbox it should sync.")],
    server_url: Annotated[
        str,
        typer.Option(help="EWS or Autodiscover URL; omit to use Autodiscover from the domain."),
    ] = "",
    password: Annotated[str | None, typer.Option(envvar="M365SYNC_EXCHANGE_PASSWORD")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run Test for an Exchange service account before adding it (read-only). Exit code 1 if
    a required check fails."""
    from m365sync.connections import service_accounts

    with Context() as ctx, ctx.session() as session:
        report = ctx.run(
            service_accounts.test_exchange_draft(
                session,
                ctx.runtime,
                get_org(session, org),
                server_url=server_url,
                username=username,
                password=secret_value(password, "Password"),
                test_mailbox=test_mailbox,
            )
        )
    print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


@accounts_app.command("add-exchange")
def accounts_add_exchange(
    org: OrgOption,
    server_url: Annotated[
        str,
        typer.Option(help="On-premises EWS URL, e.g. https://mail.contoso.com/EWS/Exchange.asmx"),
    ],
    username: Annotated[
        str, typer.Option(help="The impersonation account, e.g. CONTOSO\\svc-crm.")
    ],
    test_mailbox: Annotated[
        str, typer.Option(help="A mailbox it should sync: Run Test reads it before saving.")
    ],
    password: Annotated[
        str | None,
        typer.Option(
            envvar="M365SYNC_EXCHANGE_PASSWORD",
            help="Its password (prompted, hidden, if not given).",
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="A name for the list.")] = "Exchange service account",
    partial: Annotated[bool, typer.Option(help=PARTIAL_HELP)] = False,
    as_json: JsonOption = False,
) -> None:
    """Run Test for Exchange, then save an on-premises Exchange (EWS, impersonation) service
    account; nothing is saved while a required check fails (exit 1, unless --partial)."""
    from m365sync.connections import service_accounts

    with Context() as ctx:
        value = secret_value(password, "Password")
        with ctx.session() as session:
            account, report = ctx.run(
                service_accounts.add_exchange_service_account(
                    session,
                    ctx.runtime,
                    get_org(session, org),
                    name=name,
                    server_url=server_url,
                    username=username,
                    password=value,
                    test_mailbox=test_mailbox,
                    partial=partial,
                )
            )
            print_report(report, as_json)
            if not as_json:
                out.print(
                    f"Saved Exchange service account [bold]{account.name}[/] (id {account.id}, "
                    f"status {account.status.value})."
                )


@accounts_app.command("remove")
def accounts_remove(org: OrgOption, account_id: ACCOUNT_ARG) -> None:
    from m365sync.connections import service_accounts

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        service_accounts.remove_service_account(session, ctx.runtime, organization, account)
        out.print(f"Removed service account {account.name}.")


# -- access policy ---------------------------------------------------------------------------


@policy_app.command("commands")
def policy_commands(
    org: OrgOption,
    account_id: Annotated[str, typer.Option("--account", help="Service account id.")],
    group: Annotated[str, typer.Option(help="Mail-enabled security group address.")],
    admin_upn: Annotated[
        str | None,
        typer.Option(help="The Exchange admin who runs the commands (Connect-ExchangeOnline)."),
    ] = None,
) -> None:
    """Exchange Online PowerShell limiting the service account to the group's members."""
    from m365sync.connections import access_policy, service_accounts

    with Context() as ctx, ctx.session() as session:
        account = service_accounts.get_service_account(session, get_org(session, org), account_id)
        commands = ctx.run(
            access_policy.access_policy_commands(ctx.runtime, account, group, admin_upn=admin_upn)
        )
    out.rule("Application Access Policy")
    typer.echo(commands.application_access_policy)
    out.rule("RBAC for Applications (successor)")
    typer.echo(commands.rbac_for_applications)
    for note in commands.notes:
        typer.echo(f"• {note}")


@policy_app.command("report")
def policy_report(
    org: OrgOption,
    account_id: Annotated[str, typer.Option("--account", help="Service account id.")],
    as_json: JsonOption = False,
) -> None:
    """Which members' mailboxes the service account can reach (read-only probes)."""
    from m365sync.connections import access_policy, service_accounts

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        results = ctx.run(access_policy.reachability(session, ctx.runtime, organization, account))
    if as_json:
        print_json(
            [
                {"email": r.email, "reach": r.reach.value, "message": r.message, "fix": r.fix}
                for r in results
            ]
        )
        return
    print_table(
        "Mailbox reachability",
        ["mailbox", "reach", "why", "fix"],
        [[r.email, r.reach.value, r.message, r.fix] for r in results],
    )


# -- connections -----------------------------------------------------------------------------


@connections_app.command("status")
def connections_status(org: OrgOption, as_json: JsonOption = False) -> None:
    """Per member: how the mailbox is connected and what is enabled."""
    from m365sync.connections import user_connections

    with Context() as ctx, ctx.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "email": row.member.email,
                "synced_domain": row.synced_domain,
                "service_accounts": [account.name for account in row.service_accounts],
                "connection": user_connections.user_connection_view(
                    row.connection, bool(row.service_accounts)
                )
                if row.connection
                else None,
            }
            for row in user_connections.connection_overview(session, get_org(session, org))
        ]

    def cells(row: dict[str, Any]) -> list[Any]:
        connection = row["connection"] or {}
        status = f"{connection.get('status', '')} {connection.get('migration') or ''}"
        return [
            row["email"],
            "yes" if row["synced_domain"] else "no (not synced)",
            ", ".join(row["service_accounts"]) or "-",
            connection.get("kind", "-"),
            status.strip(),
        ]

    show(
        rows,
        as_json,
        "Connections",
        ["member", "synced domain", "service account", "own connection", "status"],
        cells,
    )
