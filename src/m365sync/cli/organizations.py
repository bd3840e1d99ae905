"""``m365sync orgs | domains | members | api-tokens``: organizations and who is in them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from m365sync.cli._output import (
    Context,
    Exit,
    JsonOption,
    OrgOption,
    err,
    get_org,
    out,
    show,
)

orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
domains_app = typer.Typer(
    help="Domains to sync (define them before adding a service account).", no_args_is_help=True
)
members_app = typer.Typer(
    help="Members: people whose mailboxes are synced, and admins.", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens for the JSON API.", no_args_is_help=True)


# -- orgs ------------------------------------------------------------------------------------


@orgs_app.command("list")
def orgs_list(as_json: JsonOption = False) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        rows = [
            {"id": o.id, "slug": o.slug, "name": o.name}
            for o in organizations.list_organizations(session)
        ]
    show(
        rows,
        as_json,
        "Organizations",
        ["slug", "name", "id"],
        lambda r: [r["slug"], r["name"], r["id"]],
    )


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="The organization's name, e.g. Contoso.")],
    slug: Annotated[str | None, typer.Option(help="Short name used in URLs.")] = None,
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        org = organizations.create_organization(session, name, slug=slug)
        out.print(f"Created organization [bold]{org.name}[/] (slug {org.slug}, id {org.id}).")


@orgs_app.command("delete")
def orgs_delete(
    org: OrgOption, yes: Annotated[bool, typer.Option("--yes", help="Don't ask.")] = False
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        if not yes:
            typer.confirm(f"Delete {organization.name} and everything it holds?", abort=True)
        organizations.delete_organization(session, organization)
        out.print(f"Deleted {organization.name}.")


# -- domains ---------------------------------------------------------------------------------


@domains_app.command("list")
def domains_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """Each domain, whether it is verified (and how), and the DNS TXT record that proves it."""
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
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
                    "host": organizations.dns_record(d).host,
                    "value": organizations.dns_record(d).value,
                },
            }
            for d in organizations.list_domains(session, get_org(session, org))
        ]
    show(
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
def domains_add(
    org: OrgOption,
    names: Annotated[list[str], typer.Argument(help="One or more domains, e.g. contoso.com.")],
) -> None:
    """Claim domains to sync; each is used once verified (m365sync domains verify)."""
    from m365sync.connections import service_accounts
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        for name in names:
            added = ctx.run(
                service_accounts.add_domain_checked(
                    session, ctx.runtime, organization, name, actor="cli"
                )
            )
            domain = added.domain
            out.print(
                f"Added domain to sync: {domain.name} (not verified yet). Verify it by saving a "
                "service account of its Microsoft 365 tenant, or publish the DNS TXT record "
                f"{organizations.dns_record(domain).value} on {domain.name} and run: "
                f"m365sync domains verify {domain.name}"
            )
            if added.warning:
                err.print(f"Warning: {added.warning} {added.warning_fix or ''}", highlight=False)


@domains_app.command("verify")
def domains_verify(
    org: OrgOption,
    name: Annotated[str, typer.Argument(help="The domain to verify, e.g. contoso.com.")],
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
    from m365sync.organizations import service as organizations
    from m365sync.organizations.models import DomainProof

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        if trust:
            domain = organizations.verify_domain(
                session, organization, name, method=DomainProof.OPERATOR, actor="cli"
            )
        else:
            domain = organizations.verify_domain_by_dns(session, organization, name, actor="cli")
        method = domain.verification_method.value if domain.verification_method else ""
        out.print(f"{domain.name} is verified ({method.replace('_', ' ')}).")


@domains_app.command("remove")
def domains_remove(
    org: OrgOption,
    name: Annotated[str, typer.Argument(help="The domain to stop syncing.")],
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organizations.remove_domain(session, get_org(session, org), name)
        out.print(f"Removed domain {name}.")


# -- members ---------------------------------------------------------------------------------


@members_app.command("list")
def members_list(org: OrgOption, as_json: JsonOption = False) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        rows = [
            {
                "id": m.id,
                "email": m.email,
                "name": m.name,
                "role": m.role.value,
                "crm_user_id": m.crm_user_id,
            }
            for m in organizations.list_members(session, get_org(session, org))
        ]
    show(
        rows,
        as_json,
        "Members",
        ["email", "name", "role", "CRM user"],
        lambda r: [r["email"], r["name"], r["role"], r["crm_user_id"]],
    )


@members_app.command("add")
def members_add(
    org: OrgOption,
    email: Annotated[str, typer.Argument(help="The member's email address.")],
    name: Annotated[str, typer.Option(help="Display name (default: none).")] = "",
    role: Annotated[str, typer.Option(help="admin or user")] = "user",
    crm_user_id: Annotated[
        str | None, typer.Option(help="The member's user id in the CRM (owner of their records).")
    ] = None,
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        member = organizations.add_member(
            session, get_org(session, org), email, name=name, role=role, crm_user_id=crm_user_id
        )
        out.print(f"Added {member.email} ({member.role.value}).")


@members_app.command("set-role")
def members_set_role(
    org: OrgOption,
    email: Annotated[str, typer.Argument(help="The member's email address.")],
    role: Annotated[str, typer.Argument(help="admin or user")],
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        member = organizations.update_member(
            session, organization, organizations.get_member(session, organization, email), role=role
        )
        out.print(f"{member.email} is now {member.role.value}.")


@members_app.command("remove")
def members_remove(
    org: OrgOption, email: Annotated[str, typer.Argument(help="The member's email address.")]
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        organizations.remove_member(
            session, organization, organizations.get_member(session, organization, email)
        )
        out.print(f"Removed {email}.")


@members_app.command("import")
def members_import(
    org: OrgOption,
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with a header row: email,name,role,crm_user_id")
    ],
) -> None:
    from m365sync.organizations import service as organizations

    with Context() as ctx:
        try:
            text = csv_file.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise typer.BadParameter(f"Can't read {csv_file}: {exc.strerror}") from exc
        with ctx.session() as session:
            result = organizations.import_members_csv(session, get_org(session, org), text)
    out.print(
        f"Imported: {len(result.created)} added, {len(result.updated)} updated, "
        f"{len(result.errors)} rejected."
    )
    for problem in result.errors:
        err.print(f"[yellow]{problem}[/]")
    if result.errors:
        raise Exit(2)


# -- API tokens ------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    org: OrgOption,
    admin: Annotated[str, typer.Option(help="The admin the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, to recognise it later.")] = "",
) -> None:
    """A token for the JSON API (shown once)."""
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        member = organizations.get_member(session, organization, admin)
        token, plaintext = organizations.create_api_token(session, organization, member, name=name)
    err.print(
        f"API token {token.id} for {member.email}, shown once: store it safely.",
        highlight=False,
        soft_wrap=True,
    )
    print(plaintext)


@tokens_app.command("list")
def tokens_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """The organization's API tokens (never the tokens themselves), revoked ones included."""
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "admin": t.member.email,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in organizations.list_api_tokens(session, get_org(session, org))
        ]

    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""

    show(
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
    from m365sync.organizations import service as organizations

    with Context() as ctx, ctx.session() as session:
        organization = get_org(session, org)
        for token_id in token_ids:
            token = organizations.revoke_api_token(session, organization, token_id)
            out.print(
                f"Revoked API token {token.id} ({token.prefix}…, {token.member.email}).",
                highlight=False,
            )
