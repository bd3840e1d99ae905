"""``m365sync``: the command line.

Exit codes scripts can trust: 0 success; 1 failure (a Run Test that found a problem, a
Microsoft error, anything unexpected); 2 usage or validation (bad arguments, unknown
organization or member, duplicate, a precondition such as "no domains"). Errors go to
stderr as the cause and the fix; results go to stdout (rich tables, or ``--json``).
Secrets are read from prompts (hidden), environment variables or files, never printed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from m365sync.errors import M365SyncError
from m365sync.sync import cli as sync_cli

T = TypeVar("T")

app = typer.Typer(
    help="m365sync: sync Microsoft 365 mailboxes with your CRM.", no_args_is_help=True
)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
domains_app = typer.Typer(
    help="Domains to sync (define them before adding a service account).", no_args_is_help=True
)
members_app = typer.Typer(
    help="Members: people whose mailboxes are synced, and admins.", no_args_is_help=True
)
accounts_app = typer.Typer(
    help="Service accounts (Office 365 app registrations, Exchange).", no_args_is_help=True
)
policy_app = typer.Typer(help="Limit a service account to some mailboxes.", no_args_is_help=True)
connections_app = typer.Typer(help="Mailbox connections.", no_args_is_help=True)
db_app = typer.Typer(help="Database.", no_args_is_help=True)
keys_app = typer.Typer(help="The key that encrypts secrets at rest.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the JSON API.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(domains_app, name="domains")
app.add_typer(members_app, name="members")
app.add_typer(accounts_app, name="service-accounts")
app.add_typer(policy_app, name="access-policy")
app.add_typer(connections_app, name="connections")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(tokens_app, name="api-tokens")
app.add_typer(sync_cli.app)  # unnamed: ``sync``, ``status``, ``resync``, ``crm`` at the top

out = Console()
err = Console(stderr=True)

OrgOption = Annotated[
    str, typer.Option("--org", "-o", help="Organization slug or id.", envvar="M365SYNC_ORG")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Exit(Exception):
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
    from m365sync.connections.errors import RunTestFailed
    from m365sync.microsoft.errors import MicrosoftError

    if isinstance(error, MicrosoftError | RunTestFailed):
        return 1
    return 2 if error.status < 500 else 1


# -- context ---------------------------------------------------------------------------------


class Context:
    def __init__(self) -> None:
        from m365sync.db import database_from_settings, migrate
        from m365sync.settings import get_settings

        self.settings = get_settings()
        logging.basicConfig(
            level=self.settings.log_level.upper(),
            stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("alembic", "httpx", "httpcore", "msal"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        self.database = database_from_settings(self.settings)
        migrate(self.database.engine)
        self._runtime: Any = None

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            from m365sync.connections.runtime import ConnectionRuntime

            self._runtime = ConnectionRuntime.from_settings(self.settings, self.database)
        return self._runtime

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.database.session() as session:
            yield session


def _context() -> Context:
    return Context()


def _org(session: Session, key: str) -> Any:
    from m365sync.organizations import service as orgs

    return orgs.get_organization(session, key)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)


def _show(
    rows: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: list[str],
    cells: Callable[[dict[str, Any]], list[Any]],
) -> None:
    """A list command's answer: the rows as JSON for scripts (``--json``), else a table
    whose ``cells`` say how each row reads to a person."""
    if as_json:
        _json(rows)
    else:
        _table(title, columns, [cells(row) for row in rows])


def _secret_value(value: str | None, prompt: str) -> str:
    if value:
        return value
    if not sys.stdin.isatty():
        text = sys.stdin.readline().strip()
        if text:
            return text
    return str(typer.prompt(prompt, hide_input=True))


# -- orgs ------------------------------------------------------------------------------------


@orgs_app.command("list")
def orgs_list(as_json: JsonOption = False) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        rows = [
            {"id": o.id, "slug": o.slug, "name": o.name} for o in orgs.list_organizations(session)
        ]
    _show(
        rows,
        as_json,
        "Organizations",
        ["slug", "name", "id"],
        lambda r: [r["slug"], r["name"], r["id"]],
    )


@orgs_app.command("create")
def orgs_create(
    name: str, slug: Annotated[str | None, typer.Option(help="Short name used in URLs.")] = None
) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        org = orgs.create_organization(session, name, slug=slug)
        out.print(f"Created organization [bold]{org.name}[/] (slug {org.slug}, id {org.id}).")


@orgs_app.command("delete")
def orgs_delete(
    org: OrgOption, yes: Annotated[bool, typer.Option("--yes", help="Don't ask.")] = False
) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        if not yes:
            typer.confirm(f"Delete {organization.name} and everything it holds?", abort=True)
        orgs.delete_organization(session, organization)
        out.print(f"Deleted {organization.name}.")


# -- domains ---------------------------------------------------------------------------------


@domains_app.command("list")
def domains_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """Each domain, whether it is verified (and how), and the DNS TXT record that proves it."""
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        rows = [
            {
                "name": d.name,
                "verified": d.verified,
                "verified_at": d.verified_at.isoformat() if d.verified_at else None,
                "verification_method": d.verification_method.value
                if d.verification_method
                else None,
                "tenant_id": d.tenant_id,
                "dns_txt_record": {
                    "host": orgs.dns_record(d).host,
                    "value": orgs.dns_record(d).value,
                },
            }
            for d in orgs.list_domains(session, _org(session, org))
        ]
    _show(
        rows,
        as_json,
        "Domains to sync",
        ["domain", "ownership", "tenant", "DNS TXT record that verifies it"],
        lambda r: [
            r["name"],
            f"verified ({r['verification_method'].replace('_', ' ')})"
            if r["verified"]
            else "NOT VERIFIED: its mailboxes wait",
            r["tenant_id"] or "",
            "" if r["verified"] else r["dns_txt_record"]["value"],
        ],
    )


@domains_app.command("add")
def domains_add(org: OrgOption, names: list[str]) -> None:
    """Claim domains to sync; each is used once verified (m365sync domains verify)."""
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        for name in names:
            domain = orgs.add_domain(session, organization, name)
            out.print(
                f"Added domain to sync: {domain.name} (not verified yet). Verify it by saving a "
                "service account of its Microsoft 365 tenant, or publish the DNS TXT record "
                f"{orgs.dns_record(domain).value} on {domain.name} and run: "
                f"m365sync domains verify {domain.name}"
            )


@domains_app.command("verify")
def domains_verify(
    org: OrgOption,
    name: str,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Verify without proof, on your word as this server's operator (e.g. no DNS "
            "reachable from here). Refused if another organization has verified it.",
        ),
    ] = False,
) -> None:
    """Verify a domain by its DNS TXT record (shown by m365sync domains list)."""
    from m365sync.organizations import service as orgs
    from m365sync.organizations.models import DomainProof

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        if trust:
            domain = orgs.verify_domain(
                session, organization, name, method=DomainProof.OPERATOR, actor="cli"
            )
        else:
            domain = orgs.verify_domain_by_dns(session, organization, name, actor="cli")
        method = domain.verification_method.value if domain.verification_method else ""
        out.print(f"{domain.name} is verified ({method.replace('_', ' ')}).")


@domains_app.command("remove")
def domains_remove(org: OrgOption, name: str) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        orgs.remove_domain(session, _org(session, org), name)
        out.print(f"Removed domain {name}.")


# -- members ---------------------------------------------------------------------------------


@members_app.command("list")
def members_list(org: OrgOption, as_json: JsonOption = False) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        rows = [
            {
                "id": m.id,
                "email": m.email,
                "name": m.name,
                "role": m.role.value,
                "crm_user_id": m.crm_user_id,
            }
            for m in orgs.list_members(session, _org(session, org))
        ]
    _show(
        rows,
        as_json,
        "Members",
        ["email", "name", "role", "CRM user"],
        lambda r: [r["email"], r["name"], r["role"], r["crm_user_id"]],
    )


@members_app.command("add")
def members_add(
    org: OrgOption,
    email: str,
    name: Annotated[str, typer.Option()] = "",
    role: Annotated[str, typer.Option(help="admin or user")] = "user",
    crm_user_id: Annotated[str | None, typer.Option()] = None,
) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        member = orgs.add_member(
            session, _org(session, org), email, name=name, role=role, crm_user_id=crm_user_id
        )
        out.print(f"Added {member.email} ({member.role.value}).")


@members_app.command("set-role")
def members_set_role(org: OrgOption, email: str, role: str) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        member = orgs.update_member(
            session, organization, orgs.get_member(session, organization, email), role=role
        )
        out.print(f"{member.email} is now {member.role.value}.")


@members_app.command("remove")
def members_remove(org: OrgOption, email: str) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        orgs.remove_member(session, organization, orgs.get_member(session, organization, email))
        out.print(f"Removed {email}.")


@members_app.command("import")
def members_import(
    org: OrgOption,
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with a header row: email,name,role,crm_user_id")
    ],
) -> None:
    from m365sync.organizations import service as orgs

    ctx = _context()
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise typer.BadParameter(f"Can't read {csv_file}: {exc.strerror}") from exc
    with ctx.session() as session:
        result = orgs.import_members_csv(session, _org(session, org), text)
    out.print(
        f"Imported: {len(result.created)} added, {len(result.updated)} updated, "
        f"{len(result.errors)} rejected."
    )
    for problem in result.errors:
        err.print(f"[yellow]{problem}[/]")
    if result.errors:
        raise Exit(2)


# -- service accounts ------------------------------------------------------------------------


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        _json(report.as_json())
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


def _account_rows(accounts: list[Any], settings: Any) -> list[dict[str, Any]]:
    from m365sync.connections import service_accounts

    now = datetime.now(UTC)
    return [
        service_accounts.service_account_view(a, now, settings.secret_expiry_warning_days)
        for a in accounts
    ]


@accounts_app.command("list")
def accounts_list(org: OrgOption, as_json: JsonOption = False) -> None:
    from m365sync.connections import service_accounts

    ctx = _context()
    with ctx.session() as session:
        rows = _account_rows(
            service_accounts.list_service_accounts(session, _org(session, org)), ctx.settings
        )
    if as_json:
        for row in rows:
            row.pop("certificate_pem", None)
        _json(rows)
        return
    _table(
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
    name: Annotated[str, typer.Option()] = "Office 365 service account",
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
        str | None, typer.Option(envvar="M365SYNC_CERTIFICATE_PASSWORD")
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

    ctx = _context()
    credential: Credential
    if certificate is not None:
        credential = load_certificate(certificate.read_bytes(), certificate_password)
    else:
        credential = ClientSecret(_secret_value(secret, "Client secret Value"))
    draft = ServiceAccountDraft(
        client_id=client_id,
        credential=credential,
        test_mailbox=test_mailbox,
        tenant_id=tenant_id,
        name=name,
        secret_expires_at=secret_expires.replace(tzinfo=UTC) if secret_expires else None,
    )
    with ctx.session() as session:
        account, report = run(
            service_accounts.add_service_account(
                session, ctx.runtime, _org(session, org), draft, partial=partial
            )
        )
        _print_report(report, as_json)
        if not as_json:
            out.print(
                f"Saved service account [bold]{account.name}[/] (id {account.id}, status "
                f"{account.status.value})."
            )


@accounts_app.command("generate-certificate")
def accounts_generate_certificate(
    org: OrgOption, name: Annotated[str, typer.Option()] = "Office 365 service account"
) -> None:
    """Create a key pair here and print the certificate to upload to the app registration."""
    from m365sync.connections import service_accounts

    ctx = _context()
    with ctx.session() as session:
        account = service_accounts.create_certificate_account(
            session, ctx.runtime, _org(session, org), name=name
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
    account_id: str,
    client_id: Annotated[str, typer.Option()],
    test_mailbox: Annotated[str, typer.Option()],
    tenant_id: Annotated[str | None, typer.Option()] = None,
    partial: Annotated[bool, typer.Option()] = False,
    as_json: JsonOption = False,
) -> None:
    """Finish a service account created with generate-certificate: Run Test and save."""
    from m365sync.connections import service_accounts

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        report = run(
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
        _print_report(report, as_json)


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
    tenant_id: Annotated[str | None, typer.Option()] = None,
    test_mailbox: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Run Test (read-only). Exit code 1 if a required check fails."""
    from m365sync.connections import service_accounts
    from m365sync.connections.run_test import ServiceAccountDraft
    from m365sync.microsoft.auth import ClientSecret

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        if account_id:
            account = service_accounts.get_service_account(session, organization, account_id)
            report = run(
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
                credential=ClientSecret(_secret_value(secret, "Client secret Value")),
                test_mailbox=test_mailbox,
                tenant_id=tenant_id,
            )
            report = run(service_accounts.test_draft(session, ctx.runtime, organization, draft))
    _print_report(report, as_json)
    if not report.ok:
        raise Exit(1)


@accounts_app.command("replace-secret")
def accounts_replace_secret(
    org: OrgOption,
    account_id: str,
    secret: Annotated[str | None, typer.Option(envvar="M365SYNC_CLIENT_SECRET")] = None,
    secret_expires: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    partial: Annotated[bool, typer.Option()] = False,
    as_json: JsonOption = False,
) -> None:
    """A new client secret (tested before it replaces the old one)."""
    from m365sync.connections import service_accounts

    ctx = _context()
    value = _secret_value(secret, "New client secret Value")
    with ctx.session() as session:
        organization = _org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        report = run(
            service_accounts.replace_secret(
                session,
                ctx.runtime,
                organization,
                account,
                secret=value,
                secret_expires_at=secret_expires.replace(tzinfo=UTC) if secret_expires else None,
                partial=partial,
            )
        )
    _print_report(report, as_json)


@accounts_app.command("add-exchange")
def accounts_add_exchange(
    org: OrgOption,
    server_url: Annotated[
        str,
        typer.Option(help="On-premises EWS URL, e.g. https://mail.contoso.com/EWS/Exchange.asmx"),
    ],
    username: Annotated[str, typer.Option()],
    password: Annotated[str | None, typer.Option(envvar="M365SYNC_EXCHANGE_PASSWORD")] = None,
    name: Annotated[str, typer.Option()] = "Exchange service account",
) -> None:
    """An on-premises Exchange (EWS, impersonation) service account."""
    from m365sync.connections import service_accounts

    ctx = _context()
    value = _secret_value(password, "Password")
    with ctx.session() as session:
        account = service_accounts.add_exchange_service_account(
            session,
            ctx.runtime,
            _org(session, org),
            name=name,
            server_url=server_url,
            username=username,
            password=value,
        )
        out.print(f"Saved Exchange service account {account.name} (id {account.id}).")


@accounts_app.command("remove")
def accounts_remove(org: OrgOption, account_id: str) -> None:
    from m365sync.connections import service_accounts

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        service_accounts.remove_service_account(session, ctx.runtime, organization, account)
        out.print(f"Removed service account {account.name}.")


# -- access policy ---------------------------------------------------------------------------


@policy_app.command("commands")
def policy_commands(
    org: OrgOption,
    account_id: Annotated[str, typer.Option("--account", help="Service account id.")],
    group: Annotated[str, typer.Option(help="Mail-enabled security group address.")],
    admin_upn: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Exchange Online PowerShell limiting the service account to the group's members."""
    from m365sync.connections import access_policy, service_accounts

    ctx = _context()
    with ctx.session() as session:
        account = service_accounts.get_service_account(session, _org(session, org), account_id)
        commands = run(
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
    account_id: Annotated[str, typer.Option("--account")],
    as_json: JsonOption = False,
) -> None:
    """Which members' mailboxes the service account can reach (read-only probes)."""
    from m365sync.connections import access_policy, service_accounts

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        account = service_accounts.get_service_account(session, organization, account_id)
        results = run(access_policy.reachability(session, ctx.runtime, organization, account))
    if as_json:
        _json(
            [
                {"email": r.email, "reach": r.reach.value, "message": r.message, "fix": r.fix}
                for r in results
            ]
        )
        return
    _table(
        "Mailbox reachability",
        ["mailbox", "reach", "why", "fix"],
        [[r.email, r.reach.value, r.message, r.fix] for r in results],
    )


# -- connections -----------------------------------------------------------------------------


@connections_app.command("status")
def connections_status(org: OrgOption, as_json: JsonOption = False) -> None:
    """Per member: how the mailbox is connected and what is enabled."""
    from m365sync.connections import service_accounts, user_connections
    from m365sync.organizations import service as orgs

    ctx = _context()
    rows: list[dict[str, Any]] = []
    with ctx.session() as session:
        organization = _org(session, org)
        domains = orgs.verified_domain_names(session, organization.id)
        connections = {
            c.member_id: c for c in user_connections.list_user_connections(session, organization)
        }
        for member in orgs.list_members(session, organization):
            connection = connections.get(member.id)
            in_domain = member.domain in domains
            covering = service_accounts.accounts_covering(session, organization, member.domain)
            via = [a.name for a in covering]
            view = (
                user_connections.user_connection_view(connection, bool(via)) if connection else None
            )
            rows.append(
                {
                    "email": member.email,
                    "synced_domain": in_domain,
                    "service_accounts": via,
                    "connection": view,
                }
            )

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

    _show(
        rows,
        as_json,
        "Connections",
        ["member", "synced domain", "service account", "own connection", "status"],
        cells,
    )


# -- db, keys, tokens ------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (also done on every start)."""
    from m365sync.db import current_revision

    ctx = _context()
    out.print(
        f"Database at revision {current_revision(ctx.database.engine)} "
        f"({ctx.database.engine.url.render_as_string()})."
    )


@db_app.command("current")
def db_current() -> None:
    from m365sync.db import current_revision, database_from_settings, head_revision
    from m365sync.settings import get_settings

    database = database_from_settings(get_settings())
    out.print(f"current: {current_revision(database.engine)}  head: {head_revision()}")


@keys_app.command("rotate")
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
    from m365sync.crypto import (
        KEY_FILE,
        NEXT_KEY_FILE,
        SecretBox,
        decode_key,
        generate_key,
        load_keys,
        write_key_file,
    )
    from m365sync.db.sealed import reseal_all
    from m365sync.errors import ValidationFailed

    ctx = _context()
    old = SecretBox(load_keys(ctx.settings))
    if ctx.settings.secret_key:
        if not new_key:
            raise ValidationFailed(
                "The key comes from M365SYNC_SECRET_KEY, so the new key must too.",
                fix=(
                    "Run with M365SYNC_NEW_SECRET_KEY=<base64 of 32 bytes>, then set "
                    "M365SYNC_SECRET_KEY to it."
                ),
            )
        key = decode_key(new_key, source="M365SYNC_NEW_SECRET_KEY")
        with ctx.session() as session:
            count = reseal_all(session, old, SecretBox([key]))
        out.print(
            f"Re-encrypted {count} secrets. Now set M365SYNC_SECRET_KEY to the new key and restart."
        )
        return
    key_path = ctx.settings.data_dir / KEY_FILE
    next_path = ctx.settings.data_dir / NEXT_KEY_FILE
    if next_path.exists():
        key = decode_key(next_path.read_text(encoding="ascii"), source=str(next_path))
    else:
        key = decode_key(new_key, source="--new-key") if new_key else generate_key()
        write_key_file(next_path, key)
    with ctx.session() as session:
        count = reseal_all(session, old, SecretBox([key, *load_keys(ctx.settings)]))
    os.replace(next_path, key_path)
    out.print(f"Re-encrypted {count} secrets under a new key ({key_path}).")


@tokens_app.command("create")
def tokens_create(
    org: OrgOption,
    admin: Annotated[str, typer.Option(help="The admin the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, to recognise it later.")] = "",
) -> None:
    """A token for the JSON API (shown once)."""
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        member = orgs.get_member(session, organization, admin)
        token, plaintext = orgs.create_api_token(session, organization, member, name=name)
    err.print(
        f"API token {token.id} for {member.email}, shown once: store it safely.",
        highlight=False,
        soft_wrap=True,
    )
    print(plaintext)


@tokens_app.command("list")
def tokens_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """The organization's API tokens (never the tokens themselves), revoked ones included."""
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "admin": t.member.email,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in orgs.list_api_tokens(session, _org(session, org))
        ]

    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""

    _show(
        rows,
        as_json,
        "API tokens",
        ["id", "name", "token", "admin", "created", "last used", "status"],
        lambda r: [
            r["id"],
            r["name"],
            f"{r['prefix']}…",
            r["admin"],
            when(r["created_at"]),
            when(r["last_used_at"]) or "never",
            f"revoked {when(r['revoked_at'])}" if r["revoked_at"] else "active",
        ],
    )


@tokens_app.command("revoke")
def tokens_revoke(
    org: OrgOption,
    token_ids: Annotated[
        list[str], typer.Argument(help="Token ids, as 'm365sync api-tokens list' shows them.")
    ],
) -> None:
    """Revoke API tokens: they stop working at once, for good."""
    from m365sync.organizations import service as orgs

    ctx = _context()
    with ctx.session() as session:
        organization = _org(session, org)
        for token_id in token_ids:
            token = orgs.revoke_api_token(session, organization, token_id)
            out.print(
                f"Revoked API token {token.id} ({token.prefix}…, {token.member.email}).",
                highlight=False,
            )


# -- serve -----------------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> None:
    try:
        # Outside standalone mode click returns a ``typer.Exit``'s code instead of exiting.
        returned = app(args=argv, standalone_mode=False)
    except Exit as exc:
        sys.exit(exc.code)
    except M365SyncError as exc:
        err.print(f"[red]Error:[/] {exc.message}", highlight=False)
        fix = cli_fix(exc)
        if fix:
            err.print(f"[bold]Fix:[/] {fix}", highlight=False)
        report = getattr(exc, "report", None)
        if report is not None:
            _print_report_to_err(report)
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


def _print_report_to_err(report: Any) -> None:
    for check in report.checks:
        if check.outcome.value in ("failed", "warning"):
            err.print(
                f"  {check.outcome.value}: {check.title}: {check.message} {check.fix}",
                highlight=False,
                markup=False,
            )
