"""Database access for organizations, members, domains and API tokens.

Every query that reads an organization's rows filters on its id: that is the isolation
between organizations, so keep it here and nowhere else.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from m365sync.organizations.models import ApiToken, Domain, Member, Organization


class OrganizationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # organizations
    def add(self, organization: Organization) -> Organization:
        self.session.add(organization)
        self.session.flush()
        return organization

    def get(self, organization_id: str) -> Organization | None:
        return self.session.get(Organization, organization_id)

    def by_slug(self, slug: str) -> Organization | None:
        return self.session.scalar(select(Organization).where(Organization.slug == slug))

    def all(self) -> list[Organization]:
        return list(self.session.scalars(select(Organization).order_by(Organization.name)))

    def delete(self, organization: Organization) -> None:
        self.session.delete(organization)
        self.session.flush()

    # domains
    def domains(self, organization_id: str) -> list[Domain]:
        query = (
            select(Domain).where(Domain.organization_id == organization_id).order_by(Domain.name)
        )
        return list(self.session.scalars(query))

    def domain(self, organization_id: str, name: str) -> Domain | None:
        query = select(Domain).where(
            Domain.organization_id == organization_id, Domain.name == name.lower()
        )
        return self.session.scalar(query)

    def claims(self, name: str) -> list[Domain]:
        """Every organization's row for the domain ``name`` (verified or not): the one place a
        query crosses organizations, to keep a verified domain to a single one."""
        query = select(Domain).where(Domain.name == name.lower()).order_by(Domain.created_at)
        return list(self.session.scalars(query))

    def verified_domain(self, name: str) -> Domain | None:
        """The row of the organization that verified ``name``, if one did."""
        query = select(Domain).where(Domain.name == name.lower(), Domain.verified_at.is_not(None))
        return self.session.scalar(query)

    def add_domain(self, domain: Domain) -> Domain:
        self.session.add(domain)
        self.session.flush()
        return domain

    def delete_domain(self, domain: Domain) -> None:
        self.session.delete(domain)
        self.session.flush()

    # members
    def members(self, organization_id: str) -> list[Member]:
        query = (
            select(Member).where(Member.organization_id == organization_id).order_by(Member.email)
        )
        return list(self.session.scalars(query))

    def member(self, organization_id: str, member_id: str) -> Member | None:
        query = select(Member).where(
            Member.organization_id == organization_id, Member.id == member_id
        )
        return self.session.scalar(query)

    def member_by_email(self, organization_id: str, email: str) -> Member | None:
        query = select(Member).where(
            Member.organization_id == organization_id, func.lower(Member.email) == email.lower()
        )
        return self.session.scalar(query)

    def add_member(self, member: Member) -> Member:
        self.session.add(member)
        self.session.flush()
        return member

    def delete_member(self, member: Member) -> None:
        self.session.delete(member)
        self.session.flush()

    # API tokens
    def add_token(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        self.session.flush()
        return token

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    def tokens(self, organization_id: str) -> list[ApiToken]:
        query = (
            select(ApiToken)
            .where(ApiToken.organization_id == organization_id)
            .order_by(ApiToken.created_at)
        )
        return list(self.session.scalars(query))
