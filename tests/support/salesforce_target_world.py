"""Salesforce as Contoso's CRM, for the tests: the sync harness's organization (members
adele, alex and diego @contoso.com, synced from m365sim) with sfsim's demo org as its CRM,
each member a Salesforce user there, and helpers that read sfsim the way a Salesforce admin
would look at the org.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from m365sim.server import SimServer
from m365sync.auth import set_password
from m365sync.crm.salesforce_mirror import refresh_salesforce_people
from m365sync.crm.salesforce_schemas import DrainResult, MirrorResult, SalesforceTestReport
from m365sync.crm.salesforce_service import connect_with_jwt
from m365sync.crm.salesforce_writer import drain_salesforce
from m365sync.db.session import Database
from m365sync.organizations.models import Role
from m365sync.organizations.service import add_member, create_api_token, get_organization
from m365sync.settings import Settings
from sfsim import SfServer
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_world import DEMO_KEY, logged, sim
from support.sync_world import MEMBERS, SyncWorld, build_world, empty_demo_tenant

ADELE, ALEX, DIEGO = MEMBERS
PAT = "pat@fabrikam.example"
SAM = "sam@fabrikam.example"
NINA = "nina@northwind.example"
LEE = "lee@contoso-pharma.example"
ADMIN_PASSWORD = "correct horse battery staple"
MEMBER_PASSWORD = "Member-Rep-1!"
"""Each member's Salesforce user signs in with it (a rep working in Salesforce)."""


def combined_ca_bundle(sim_server: SimServer, sf: SfServer, directory: Path) -> Path:
    """One CA bundle trusting both emulators (the product has one ``ca_bundle`` setting)."""
    path = directory / "ca-both.pem"
    path.write_text(
        Path(sim_server.tls.ca_bundle).read_text() + "\n" + Path(sf.tls.ca_bundle).read_text()
    )
    return path


@dataclass
class SalesforceTarget:
    sync: SyncWorld
    sf: SfServer
    settings: Settings

    @property
    def database(self) -> Database:
        return self.sync.database

    @property
    def organization_id(self) -> str:
        return self.sync.organization_id

    @property
    def box(self) -> Any:
        return self.sync.runtime.box

    def close(self) -> None:
        self.sync.control.close()

    # -- the product's Salesforce services ---------------------------------------------------
    def connect(self, **overrides: Any) -> SalesforceTestReport:
        values: dict[str, Any] = {
            "consumer_key": SALESFORCE_CONSUMER_KEY,
            "username": SALESFORCE_INTEGRATION_USER,
            "private_key_pem": DEMO_KEY.private_key_pem,
        }
        values.update(overrides)
        with self.database.session() as session:
            return connect_with_jwt(
                session, self.box, self.settings, self.organization_id, **values
            )

    def mirror(self, **kwargs: Any) -> MirrorResult:
        return refresh_salesforce_people(
            self.database, self.organization_id, settings=self.settings, box=self.box, **kwargs
        )

    def drain(self, **kwargs: Any) -> DrainResult:
        return drain_salesforce(
            self.database, self.organization_id, settings=self.settings, box=self.box, **kwargs
        )

    # -- mail, and what Salesforce refuses ---------------------------------------------------
    def mail(
        self,
        subject: str,
        *,
        sender: str = PAT,
        to: tuple[str, ...] = (ADELE,),
        mailboxes: tuple[str, ...] = (ADELE,),
    ) -> str:
        """An email delivered to ``mailboxes`` in m365sim; returns its Internet Message-ID."""
        message_id = f"<{subject.lower().replace(' ', '-')}@fabrikam.example>"
        for mailbox in mailboxes:
            self.sync.deliver(
                mailbox,
                **{
                    "from": sender,
                    "to": list(to),
                    "subject": subject,
                    "internetMessageId": message_id,
                },
            )
        return message_id

    def refuse_emails_titled(self, subject: str) -> str:
        """A validation rule in the org that refuses emails with this subject; returns the
        rule's error message."""
        message = f"Emails titled {subject} stay out of Salesforce."
        rule = {
            "object": "EmailMessage",
            "name": "No_" + subject.replace(" ", "_"),
            "field": "Subject",
            "kind": "notEqual",
            "value": subject,
            "message": message,
        }
        self.control("POST", "seed", json={"validationRules": [rule]})
        return message

    def add_admin(self, email: str = "megan@contoso.com", password: str = ADMIN_PASSWORD) -> str:
        """An admin of Contoso who signs in to the dashboard; returns an API token of theirs."""
        with self.database.session() as session:
            organization = get_organization(session, self.organization_id)
            admin = add_member(session, organization, email, name="Megan Bowen", role=Role.ADMIN)
            set_password(session, admin, password)
            _, token = create_api_token(session, organization, admin, name="test", actor="test")
        return token

    def email_messages(self, message_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records("EmailMessage") if r["MessageIdentifier"] == message_id]

    # -- sfsim, as an admin sees the org -----------------------------------------------------
    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        return sim(self.sf, method, path, **kwargs)

    def records(self, sobject: str, *, deleted: bool = False) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.control("GET", f"records/{sobject}")["value"]
        return [r for r in rows if deleted or not r.get("IsDeleted")]

    def record_id(self, sobject: str, **match: Any) -> str:
        found = [r for r in self.records(sobject) if all(r.get(k) == v for k, v in match.items())]
        assert len(found) == 1, found
        return str(found[0]["Id"])

    def user_id(self, username: str) -> str:
        return self.record_id("User", Username=username)

    def api_requests(self) -> list[dict[str, Any]]:
        return [r for r in logged(self.sf, "/services/data/") if r["countedAsApiRequest"]]

    def forget_requests(self) -> None:
        self.control("DELETE", "requests")


def build_target(
    sim_server: SimServer, sf: SfServer, tmp_path: Path, db: Database
) -> SalesforceTarget:
    empty_demo_tenant(sim_server)  # each test builds its own mail
    world = build_world(sim_server, tmp_path, MEMBERS, database=db)
    bundle = combined_ca_bundle(sim_server, sf, tmp_path)
    settings = world.settings.model_copy(
        update={"salesforce_login_url": sf.url, "ca_bundle": bundle}
    )
    world.settings = settings
    answer = requests.post(
        f"{sf.url}/_sim/seed",
        json={
            "users": [
                {
                    "username": f"{address.split('@')[0]}@acme.example",
                    "firstName": address.split("@")[0].capitalize(),
                    "lastName": "Contoso",
                    "email": address,
                    "password": MEMBER_PASSWORD,
                }
                for address in MEMBERS
            ]
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return SalesforceTarget(world, sf, settings)


@pytest.fixture
def salesforce_target(
    sim: SimServer, sf: SfServer, tmp_path: Path, db: Database
) -> Iterator[SalesforceTarget]:
    """Contoso synced from m365sim, its CRM Salesforce (sfsim's demo org, with a user for
    each member), on the ``db`` fixture's database (SQLite, then PostgreSQL). A conftest
    imports it under the name its tests use."""
    world = build_target(sim, sf, tmp_path, db)
    try:
        yield world
    finally:
        world.close()
