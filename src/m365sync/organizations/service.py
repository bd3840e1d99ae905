"""Organizations, domains to sync, members and API tokens: the rules.

Callers pass a ``Session`` and commit at their boundary. Every change is audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.db.base import max_length, utcnow
from m365sync.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from m365sync.organizations._dns import TxtLookup as TxtLookup
from m365sync.organizations._dns import lookup_txt
from m365sync.organizations.errors import DomainNotProven, DomainTaken
from m365sync.organizations.models import (
    ApiToken,
    Domain,
    DomainProof,
    Member,
    Organization,
    Role,
)
from m365sync.organizations.repository import OrganizationRepository
from m365sync.time_zones import is_time_zone

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "m365s_"

# The longest text each column holds: longer input is refused with a message (PostgreSQL
# would fail the whole request, SQLite would store it and the pages would carry it).
ORGANIZATION_NAME_MAX = max_length(Organization.__table__.c.name)
SLUG_MAX = max_length(Organization.__table__.c.slug)
MEMBER_NAME_MAX = max_length(Member.__table__.c.name)
EMAIL_MAX = max_length(Member.__table__.c.email)
CRM_USER_ID_MAX = max_length(Member.__table__.c.crm_user_id)
TOKEN_NAME_MAX = max_length(ApiToken.__table__.c.name)


def _within(value: str, limit: int, what: str) -> str:
    """``value`` if it is at most ``limit`` characters, else ``ValidationFailed``."""
    if len(value) > limit:
        raise ValidationFailed(
            f"{what} is {len(value):,} characters long; the most is {limit}.",
            fix=f"Shorten it to {limit} characters or fewer.",
        )
    return value


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "org"


# -- organizations ----------------------------------------------------------------------------


def create_organization(
    session: Session, name: str, *, slug: str | None = None, actor: str = "cli"
) -> Organization:
    name = _within(name.strip(), ORGANIZATION_NAME_MAX, "The organization's name")
    if not name:
        raise ValidationFailed("An organization needs a name.", fix="Give a name, e.g. 'Contoso'.")
    if slug is not None:
        _within(slug.strip(), SLUG_MAX, "The organization's short name (slug)")
    repo = OrganizationRepository(session)
    slug = _slugify(slug or name)
    if repo.by_slug(slug) is not None:
        raise Conflict(
            f"An organization with the slug '{slug}' already exists.",
            fix="Choose another name or slug.",
        )
    organization = repo.add(Organization(name=name, slug=slug))
    audit.record(session, organization.id, actor, "organization.create", organization.slug)
    return organization


def list_organizations(session: Session) -> list[Organization]:
    return OrganizationRepository(session).all()


def get_organization(session: Session, key: str) -> Organization:
    """By id or slug."""
    repo = OrganizationRepository(session)
    organization = repo.get(key) or repo.by_slug(key)
    if organization is None:
        raise NotFound(
            f"No organization '{key}'.", fix="Check its slug or id in the list of organizations."
        )
    return organization


def delete_organization(session: Session, organization: Organization) -> None:
    OrganizationRepository(session).delete(organization)


# -- domains ---------------------------------------------------------------------------------


def normalize_domain(name: str) -> str:
    domain = name.strip().lower().rstrip(".")
    if domain.startswith("@"):
        domain = domain[1:]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationFailed(
            f"'{name}' is not a domain name.", fix="Enter a domain such as contoso.com."
        ) from exc
    if not DOMAIN_RE.match(domain):
        raise ValidationFailed(
            f"'{name}' is not a domain name.", fix="Enter a domain such as contoso.com."
        )
    return domain


def add_domain(
    session: Session, organization: Organization, name: str, *, actor: str = "cli"
) -> Domain:
    """Claim a domain to sync. The claim is unverified until the organization proves the
    domain (``verify_domain``); a domain another organization has verified is refused."""
    domain_name = normalize_domain(name)
    repo = OrganizationRepository(session)
    if repo.domain(organization.id, domain_name) is not None:
        raise Conflict(f"{domain_name} is already a domain to sync.", fix="Nothing to do.")
    if repo.verified_domain(domain_name) is not None:
        raise DomainTaken(domain_name)
    domain = repo.add_domain(Domain(organization_id=organization.id, name=domain_name))
    audit.record(session, organization.id, actor, "domain.add", domain_name)
    return domain


def list_domains(session: Session, organization: Organization) -> list[Domain]:
    return OrganizationRepository(session).domains(organization.id)


def get_domain(session: Session, organization: Organization, key: str) -> Domain:
    """By name or id, within the organization only."""
    repo = OrganizationRepository(session)
    domain = next((d for d in repo.domains(organization.id) if d.id == key), None)
    label = "That domain"
    if domain is None:
        try:
            label = normalize_domain(key)
        except ValidationFailed:
            pass  # neither an id of the organization's nor a domain name
        else:
            domain = repo.domain(organization.id, label)
    if domain is None:
        raise NotFound(
            f"{label} is not one of {organization.name}'s domains to sync.",
            fix="Check the name against the organization's domains to sync, or add it first.",
        )
    return domain


def remove_domain(
    session: Session, organization: Organization, key: str, *, actor: str = "cli"
) -> Domain:
    """Remove a domain to sync (by name or id); returns it."""
    domain = get_domain(session, organization, key)
    OrganizationRepository(session).delete_domain(domain)
    audit.record(session, organization.id, actor, "domain.remove", domain.name)
    return domain


# -- domain ownership ------------------------------------------------------------------------
#
# Nothing of a domain is used (sign-in, sync) until its organization has proved it: through
# Microsoft Entra ID (the tenant Entra resolves the domain to is a tenant in which an admin of
# the organization consented to its service account, or signed in), through a DNS TXT record
# this product handed out, or on the word of the server's operator. One organization at most
# holds a domain verified; unverified claims never block the owner and are dropped when it
# verifies.

DNS_TXT_PREFIX = "m365sync-verification="


@dataclass(frozen=True)
class DnsRecord:
    """The TXT record that proves a domain: publish ``value`` at ``host``."""

    host: str
    value: str


def dns_record(domain: Domain) -> DnsRecord:
    return DnsRecord(host=domain.name, value=f"{DNS_TXT_PREFIX}{domain.verification_token}")


def verify_domain(
    session: Session,
    organization: Organization,
    name: str,
    *,
    method: DomainProof,
    tenant_id: str | None = None,
    actor: str = "cli",
) -> Domain:
    """Record that ``organization`` proved ``name`` (by ``method``; ``tenant_id`` is the
    Microsoft 365 tenant the proof came from, if any). Trusted: callers hold the proof.

    Refused with ``DomainTaken`` when another organization has it verified. Other
    organizations' unverified claims of the domain are dropped (and audited there). A domain
    already verified keeps its first proof; a later proof from Entra adds or updates the
    tenant it is verified in."""
    repo = OrganizationRepository(session)
    domain = get_domain(session, organization, name)
    holder = repo.verified_domain(domain.name)
    if holder is not None and holder.organization_id != organization.id:
        raise DomainTaken(domain.name)
    if domain.verified_at is not None:
        if tenant_id and tenant_id != domain.tenant_id:
            previous = domain.tenant_id
            domain.tenant_id = tenant_id
            session.flush()
            audit.record(
                session,
                organization.id,
                actor,
                "domain.tenant",
                domain.name,
                tenant_id=tenant_id,
                previous_tenant_id=previous,
                method=method.value,
            )
        return domain
    for claim in repo.claims(domain.name):
        if claim.organization_id != organization.id:
            repo.delete_domain(claim)
            audit.record(
                session,
                claim.organization_id,
                "system",
                "domain.claim_dropped",
                claim.name,
                reason="another organization proved it owns the domain",
            )
    domain.verified_at = utcnow()
    domain.verification_method = method
    domain.tenant_id = tenant_id
    session.flush()
    audit.record(
        session,
        organization.id,
        actor,
        "domain.verify",
        domain.name,
        method=method.value,
        tenant_id=tenant_id,
    )
    return domain


def verify_domains_in_tenant(
    session: Session,
    organization: Organization,
    tenant_id: str,
    resolved: Mapping[str, str | None],
    *,
    method: DomainProof,
    actor: str = "cli",
) -> list[Domain]:
    """Entra's proof: ``tenant_id`` is a tenant in which an admin of the organization
    consented or signed in, and ``resolved`` maps domain names to the tenant Entra ID
    resolves each to (OpenID discovery answers only for a tenant that verified the domain).
    Every domain of the organization resolved to ``tenant_id`` is verified (or learns its
    tenant); the others are left as they are. Returns the domains verified or updated."""
    proved: list[Domain] = []
    repo = OrganizationRepository(session)
    for domain in repo.domains(organization.id):
        if not tenant_id or resolved.get(domain.name) != tenant_id:
            continue
        if domain.verified_at is not None and domain.tenant_id == tenant_id:
            continue
        holder = repo.verified_domain(domain.name)
        if holder is not None and holder.organization_id != organization.id:
            continue  # another organization proved it first; this claim is about to go
        proved.append(
            verify_domain(
                session, organization, domain.name, method=method, tenant_id=tenant_id, actor=actor
            )
        )
    return proved


def verify_domain_by_dns(
    session: Session,
    organization: Organization,
    name: str,
    *,
    lookup: TxtLookup | None = None,
    actor: str = "cli",
) -> Domain:
    """Verify the domain ``name`` (or id) if its DNS publishes the TXT record ``dns_record``
    handed out. ``lookup`` is the DNS query (the system's resolvers when None)."""
    domain = get_domain(session, organization, name)
    if domain.verified_at is not None:
        return domain
    record = dns_record(domain)
    found = [value.strip() for value in (lookup or lookup_txt)(record.host)]
    if record.value not in found:
        raise DomainNotProven(
            f"The TXT record {record.value} was not found on {record.host}"
            + (f" (found: {', '.join(found)})." if found else " (it has no TXT records)."),
            fix=f"At your DNS provider, add a TXT record to {record.host} with the value "
            f"{record.value}, wait until it is published (minutes, sometimes an hour), then "
            "verify again.",
        )
    return verify_domain(
        session, organization, domain.name, method=DomainProof.DNS_TXT, actor=actor
    )


def verified_domain_names(session: Session, organization_id: str) -> set[str]:
    return {d.name for d in OrganizationRepository(session).domains(organization_id) if d.verified}


def unverified_reason(domain_name: str) -> tuple[str, str]:
    """What people see while a domain waits for its proof: the cause and the fix."""
    return (
        f"{domain_name} is not verified yet, so its mailboxes wait and its users can't sign in "
        "with Microsoft.",
        f"Verify {domain_name}: save a service account for its Microsoft 365 tenant (Run Test "
        f"proves the tenant), have an admin with an address in {domain_name} connect their "
        "Office 365, or publish the DNS TXT record shown with the domain and verify it.",
    )


def domain_names(session: Session, organization_id: str) -> set[str]:
    return {d.name for d in OrganizationRepository(session).domains(organization_id)}


def is_synced_address(session: Session, organization_id: str, address: str) -> bool:
    return address.rsplit("@", 1)[-1].lower() in domain_names(session, organization_id)


# -- members ---------------------------------------------------------------------------------


def _role(value: str | Role | None) -> Role:
    if isinstance(value, Role):
        return value
    text = (value or "user").strip().lower()
    try:
        return Role(text)
    except ValueError as exc:
        raise ValidationFailed(f"'{value}' is not a role.", fix="Use admin or user.") from exc


def _email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > EMAIL_MAX:
        raise ValidationFailed(
            f"The email address is {len(email):,} characters long; the most is {EMAIL_MAX}.",
            fix="Enter the member's address, such as adele@contoso.com.",
        )
    if not EMAIL_RE.match(email):
        raise ValidationFailed(
            f"'{value}' is not an email address.", fix="Enter an address such as adele@contoso.com."
        )
    return email


def _member_name(value: str) -> str:
    return _within(value.strip(), MEMBER_NAME_MAX, "The member's name")


def _crm_user_id(value: str | None) -> str | None:
    text = (value or "").strip()
    return _within(text, CRM_USER_ID_MAX, "The CRM user id") or None


def add_member(
    session: Session,
    organization: Organization,
    email: str,
    *,
    name: str = "",
    role: str | Role = Role.USER,
    crm_user_id: str | None = None,
    actor: str = "cli",
) -> Member:
    address = _email(email)
    member_name, member_role, crm_id = _member_name(name), _role(role), _crm_user_id(crm_user_id)
    repo = OrganizationRepository(session)
    if repo.member_by_email(organization.id, address) is not None:
        raise Conflict(f"{address} is already a member.", fix="Edit the member instead.")
    member = repo.add_member(
        Member(
            organization_id=organization.id,
            email=address,
            name=member_name,
            role=member_role,
            crm_user_id=crm_id,
        )
    )
    audit.record(session, organization.id, actor, "member.add", address, role=member.role.value)
    return member


def update_member(
    session: Session,
    organization: Organization,
    member: Member,
    *,
    name: str | None = None,
    role: str | Role | None = None,
    crm_user_id: str | None = None,
    acting_member_id: str | None = None,
    actor: str = "cli",
) -> Member:
    """Change what is given. A member whose role changes loses their API tokens (see
    ``_set_role``). An admin making the change (``acting_member_id``) can't take away their
    own admin role: another admin must."""
    new_name = None if name is None else _member_name(name)
    new_role = None if role is None else _role(role)
    if member.id == acting_member_id and new_role not in (None, Role.ADMIN):
        raise ValidationFailed(
            "You can't remove your own admin role.", fix="Ask another admin to change your role."
        )
    new_crm_user_id = None if crm_user_id is None else _crm_user_id(crm_user_id)
    changed: list[str] = []
    if new_name is not None:
        member.name = new_name
        changed.append("name")
    if new_role is not None:
        _set_role(session, organization, member, new_role, actor=actor)
        changed.append("role")
    if crm_user_id is not None:
        member.crm_user_id = new_crm_user_id
        changed.append("crm_user_id")
    session.flush()
    audit.record(session, organization.id, actor, "member.update", member.email, fields=changed)
    return member


def _set_role(
    session: Session, organization: Organization, member: Member, role: Role, *, actor: str
) -> None:
    """An API token acts as an admin, so a member who stops being one loses their tokens
    for good: promoting them again later does not bring the old tokens back. A member being
    promoted holds no live token (a user can't be given one); any left over from before
    demotions revoked tokens is revoked then."""
    if role != member.role:
        _revoke_member_tokens(
            session,
            organization,
            member,
            actor=actor,
            reason="no longer an admin" if role != Role.ADMIN else "made admin again",
        )
    member.role = role


def set_time_zone(session: Session, member: Member, time_zone: str | None) -> Member:
    """The zone a member reads times in; empty or None: their browser's (each page then
    shows the zone the browser reports, or UTC without one). A personal choice, not an
    admin action: it is not audited."""
    chosen = (time_zone or "").strip()
    if chosen and not is_time_zone(chosen):
        raise ValidationFailed(
            f"'{chosen[:64]}' is not a time zone this server knows.",
            fix="Choose a time zone from the list, or your browser's.",
        )
    member.time_zone = chosen or None
    session.flush()
    return member


def list_members(session: Session, organization: Organization) -> list[Member]:
    return OrganizationRepository(session).members(organization.id)


def get_member(session: Session, organization: Organization, key: str) -> Member:
    """By id or email, within the organization only."""
    repo = OrganizationRepository(session)
    member = repo.member(organization.id, key) or repo.member_by_email(organization.id, key)
    if member is None:
        who = key if "@" in key else "That member"
        raise NotFound(
            f"{who} is not in your organization.",
            fix="Check the address against the organization's list of members.",
        )
    return member


def remove_member(
    session: Session, organization: Organization, member: Member, *, actor: str = "cli"
) -> None:
    _revoke_member_tokens(session, organization, member, actor=actor, reason="member removed")
    OrganizationRepository(session).delete_member(member)
    audit.record(session, organization.id, actor, "member.remove", member.email)


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: message"


def import_members_csv(
    session: Session, organization: Organization, text: str, *, actor: str = "cli"
) -> ImportResult:
    """Add or update members from CSV with a header row: ``email`` (required), ``name``,
    ``role`` (admin/user), ``crm_user_id``. Bad rows are reported and skipped; good rows are
    applied."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = {h.strip().lower() for h in (reader.fieldnames or [])}
    if "email" not in headers:
        raise ValidationFailed(
            "The CSV has no 'email' column.",
            fix="Put a header row first: email,name,role,crm_user_id",
        )
    repo = OrganizationRepository(session)
    try:
        for raw in reader:
            try:
                _import_member_row(session, organization, repo, raw, result, actor=actor)
            except ValidationFailed as exc:
                problem = f"{exc.message} {exc.fix or ''}".strip()
                result.errors.append(f"line {reader.line_num}: {problem}")
    except csv.Error as exc:
        result.errors.append(
            f"line {reader.line_num}: the file can't be read as CSV from here on ({exc}). Save "
            "it again as CSV (UTF-8) and import it again; the lines before it were imported."
        )
    session.flush()
    audit.record(
        session,
        organization.id,
        actor,
        "member.import",
        "",
        created=len(result.created),
        updated=len(result.updated),
    )
    return result


def _import_member_row(
    session: Session,
    organization: Organization,
    repo: OrganizationRepository,
    raw: Mapping[str | None, Any],
    result: ImportResult,
    *,
    actor: str,
) -> None:
    """One CSV row, checked whole before anything is changed."""
    row = {
        (k or "").strip().lower(): (v or "").strip()
        for k, v in raw.items()
        if k is not None and not isinstance(v, list)  # a surplus cell has no column
    }
    address = _email(row.get("email", ""))
    role = _role(row["role"]) if row.get("role") else None
    name = _member_name(row.get("name", ""))
    crm_user_id = _crm_user_id(row.get("crm_user_id"))
    existing = repo.member_by_email(organization.id, address)
    if existing is None:
        repo.add_member(
            Member(
                organization_id=organization.id,
                email=address,
                name=name,
                role=role or Role.USER,
                crm_user_id=crm_user_id,
            )
        )
        result.created.append(address)
        return
    existing.name = name or existing.name
    if role is not None:
        _set_role(session, organization, existing, role, actor=actor)
    existing.crm_user_id = crm_user_id or existing.crm_user_id
    result.updated.append(address)


# -- API tokens ------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session,
    organization: Organization,
    member: Member,
    *,
    name: str = "",
    actor: str = "cli",
) -> tuple[ApiToken, str]:
    """A new API token for an admin; the plaintext is returned once and stored only hashed."""
    if member.organization_id != organization.id:
        raise NotFound(
            f"No member '{member.email}' in {organization.name}.",
            fix="API tokens are created for an admin of the same organization.",
        )
    if member.role != Role.ADMIN:
        raise ValidationFailed(
            f"{member.email} is not an admin; API tokens act as an organization admin.",
            fix=f"Make {member.email} an admin first, then create the token.",
        )
    name = _within(name.strip(), TOKEN_NAME_MAX, "The token's name")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = OrganizationRepository(session).add_token(
        ApiToken(
            organization_id=organization.id,
            member_id=member.id,
            name=name,
            token_hash=hash_token(plaintext),
            prefix=plaintext[: len(TOKEN_PREFIX) + 4],
        )
    )
    audit.record(
        session,
        organization.id,
        actor,
        "api_token.create",
        member.email,
        token_id=token.id,
        name=name,
    )
    return token, plaintext


def authenticate_token(session: Session, plaintext: str) -> tuple[Organization, Member]:
    """The organization and admin an API token acts as; ``Unauthorized`` otherwise."""
    token = OrganizationRepository(session).token_by_hash(hash_token(plaintext.strip()))
    if token is None:
        raise Unauthorized(
            "The API token is unknown.",
            fix=(
                "Give the whole token, as it was shown when it was created; an admin of the "
                "server creates a new one if it is lost."
            ),
        )
    if token.revoked_at is not None:
        raise Unauthorized(
            f"This API token ({token.prefix}…, '{token.name or 'unnamed'}') was revoked on "
            f"{token.revoked_at:%Y-%m-%d %H:%M} UTC and no longer works.",
            fix="Ask an admin of the organization for a new token.",
        )
    member = token.member
    if member.role != Role.ADMIN:
        raise Unauthorized(
            f"The API token belongs to {member.email}, who is no longer an admin.",
            fix="Create a token for a current admin.",
        )
    token.last_used_at = utcnow()
    organization = OrganizationRepository(session).get(token.organization_id)
    assert organization is not None
    return organization, member


def list_api_tokens(session: Session, organization: Organization) -> list[ApiToken]:
    """The organization's API tokens, oldest first, revoked ones included (with the date)."""
    return OrganizationRepository(session).tokens(organization.id)


def revoke_api_token(
    session: Session, organization: Organization, token_id: str, *, actor: str = "cli"
) -> ApiToken:
    """Revoke one of the organization's tokens for good; revoking it again changes nothing."""
    for token in OrganizationRepository(session).tokens(organization.id):
        if token.id == token_id.strip():
            if token.revoked_at is None:
                _revoke(session, token, actor=actor, reason="revoked by an admin")
            return token
    raise NotFound(
        f"{organization.name} has no API token with the id '{token_id}'.",
        fix="Pick the token from the list of the organization's API tokens.",
    )


def _revoke(session: Session, token: ApiToken, *, actor: str, reason: str) -> None:
    token.revoked_at = utcnow()
    audit.record(
        session,
        token.organization_id,
        actor,
        "api_token.revoke",
        token.member.email,
        token_id=token.id,
        name=token.name,
        reason=reason,
    )


def _revoke_member_tokens(
    session: Session, organization: Organization, member: Member, *, actor: str, reason: str
) -> None:
    for token in OrganizationRepository(session).tokens(organization.id):
        if token.member_id == member.id and token.revoked_at is None:
            _revoke(session, token, actor=actor, reason=reason)
