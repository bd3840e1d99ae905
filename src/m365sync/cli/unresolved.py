"""``m365sync unresolved``: a member's unresolved queue (Salesforce as the CRM): emails and
meetings with people who are no Salesforce Contact or Lead, and what is decided for each
address (docs/salesforce.md, "The unresolved queue")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from m365sync.cli._output import Context, get_org, out, print_json, show

app = typer.Typer(
    no_args_is_help=True,
    help="The unresolved queue: relate, make a Lead for, or dismiss unknown addresses.",
)

OrgOption = Annotated[str, typer.Option("--org", help="Organization slug, id or name.")]
MemberOption = Annotated[
    str, typer.Option("--member", help="Whose queue: the member's email address or id.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AddressArgument = Annotated[
    str, typer.Argument(help="The external email address the decision is for.")
]


def _member_id(session: Any, organization: Any, key: str) -> str:
    from m365sync.organizations import service as organizations

    return organizations.get_member(session, organization, key).id


@app.command("list")
def list_command(org: OrgOption, member: MemberOption, as_json: JsonOption = False) -> None:
    """The member's waiting emails and meetings, newest first, with their open addresses."""
    from m365sync.crm.salesforce_unresolved import unresolved_items

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        items = unresolved_items(
            session, organization.id, _member_id(session, organization, member)
        )
        rows = [item.as_json() for item in items]
    show(
        rows,
        as_json,
        "Unresolved",
        ["When", "Type", "Subject", "Addresses"],
        lambda r: [r["occurred_at"], r["kind"], r["subject"], ", ".join(r["addresses"])],
    )


@app.command("search")
def search_command(
    text: Annotated[str, typer.Argument(help="Part of a name, address or company.")],
    org: OrgOption,
    as_json: JsonOption = False,
) -> None:
    """Salesforce Contacts, Leads, Accounts and open Opportunities to relate an address to."""
    from m365sync.crm.salesforce_unresolved import find_salesforce_records

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        rows = [r.as_json() for r in find_salesforce_records(session, organization.id, text)]
    show(
        rows,
        as_json,
        "Salesforce records",
        ["Object", "Id", "Name"],
        lambda r: [r["sobject"], r["salesforce_id"], r["label"]],
    )


def _said(decision: Any, as_json: bool) -> None:
    if as_json:
        print_json(decision.as_json())
        return
    target = f" → {decision.sobject} {decision.label}" if decision.sobject else ""
    out.print(
        f"{decision.address}: {decision.choice.replace('_', ' ')}{target} "
        f"({decision.requeued} waiting item(s) go to Salesforce)."
    )


@app.command("relate")
def relate_command(
    address: AddressArgument,
    org: OrgOption,
    member: MemberOption,
    record: Annotated[
        str, typer.Option("--record", help="The Salesforce record's id, as search shows it.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Relate the address (what waits, and what comes later) to a Salesforce record."""
    from m365sync.crm.salesforce_unresolved import relate_address

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        decision = relate_address(
            session, organization.id, _member_id(session, organization, member), address, record
        )
    _said(decision, as_json)


@app.command("lead")
def lead_command(
    address: AddressArgument,
    org: OrgOption,
    member: MemberOption,
    name: Annotated[str, typer.Option("--name", help="The person's name, first then last.")] = "",
    company: Annotated[
        str, typer.Option("--company", help="The Lead's company (default: the address's domain).")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a Salesforce Lead for the address, owned by the member's Salesforce user."""
    from m365sync.crm.salesforce_unresolved import create_lead_for_address

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        decision = create_lead_for_address(
            session,
            organization.id,
            _member_id(session, organization, member),
            address,
            name=name,
            company=company,
            settings=ctx.settings,
            box=ctx.runtime.box,
        )
    _said(decision, as_json)


@app.command("dismiss")
def dismiss_command(
    address: AddressArgument, org: OrgOption, member: MemberOption, as_json: JsonOption = False
) -> None:
    """Not for Salesforce: the address leaves the queue, now and later."""
    from m365sync.crm.salesforce_unresolved import dismiss_address

    with Context(configure_logging=False) as ctx, ctx.session() as session:
        organization = get_org(session, org)
        decision = dismiss_address(
            session, organization.id, _member_id(session, organization, member), address
        )
    _said(decision, as_json)
