"""The Salesforce writer under real failures: writer processes SIGKILLed between
Salesforce's answer and the local commit, and a soak with faults on both sides while mail
and meetings change. Each ends with sfsim holding exactly one EmailMessage per message,
related to exactly the right people, and one Event per meeting."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from m365sync.crm.models import SalesforceActivityRecord, WriteState
from m365sync.crm.salesforce_schemas import DrainStatus
from m365sync.sync.features import SyncFeature
from support.salesforce_target_world import (
    ADELE,
    ALEX,
    LEE,
    MEMBERS,
    NINA,
    PAT,
    SAM,
    SalesforceTarget,
)

CORRESPONDENTS = [
    {"name": "Pat Buyer", "address": PAT},
    {"name": "Sam Engineer", "address": SAM},
    {"name": "Nina Owner", "address": NINA},
]
ROLE_FIELDS = (
    ("FromAddress", "FromAddress"),
    ("ToAddress", "ToAddress"),
    ("CcAddress", "CcAddress"),
    ("BccAddress", "BccAddress"),
)


def connected(target: SalesforceTarget) -> None:
    report = target.connect()
    assert report.ok, report.failures()
    target.mirror()


def sync(target: SalesforceTarget, *features: SyncFeature) -> None:
    for mailbox in MEMBERS:
        for feature in features:
            result = target.sync.sync(mailbox, feature)
            assert result.outcome == "ok", (result.error, result.fix)


def people(target: SalesforceTarget) -> dict[str, str]:
    """Address → the Salesforce record an email involving it must be related to: the
    member's User, else the oldest Contact, else an unconverted Lead."""
    found: dict[str, str] = {}
    for user in target.records("User"):
        if user.get("Email", "").lower() in MEMBERS:
            found[user["Email"].lower()] = user["Id"]
    for lead in target.records("Lead"):
        if lead.get("Email") and not lead.get("IsConverted"):
            found.setdefault(lead["Email"].lower(), lead["Id"])
    contacts = sorted(target.records("Contact"), key=lambda c: str(c.get("CreatedDate")))
    for contact in contacts:
        if contact.get("Email"):
            found[contact["Email"].lower()] = contact["Id"]  # a contact wins over a lead
    for user in target.records("User"):
        if user.get("Email", "").lower() in MEMBERS:
            found[user["Email"].lower()] = user["Id"]
    return found


def expected_relations(email: dict[str, Any], who: dict[str, str]) -> set[tuple[str, str]]:
    """The relations an admin expects on ``email``: each known person, by their first role."""
    wanted: dict[str, str] = {}
    for field, role in ROLE_FIELDS:
        for address in str(email.get(field) or "").split(";"):
            record = who.get(address.strip().lower())
            if record:
                wanted.setdefault(record, role)
    return set(wanted.items())


def assert_exactly_once(
    target: SalesforceTarget, message_ids: set[str], meetings: dict[str, str]
) -> None:
    """One EmailMessage per message with exactly its relations; one Event per meeting
    (iCalUId → subject), and no other."""
    emails = target.records("EmailMessage")
    counts = Counter(e["M365Sync_Message_Id__c"] for e in emails)
    assert [m for m, n in counts.items() if n > 1] == []
    assert set(counts) == message_ids
    relations: dict[str, list[tuple[str, str]]] = {}
    for row in target.records("EmailMessageRelation"):
        relations.setdefault(row["EmailMessageId"], []).append(
            (row["RelationId"], row["RelationType"])
        )
    who = people(target)
    for email in emails:
        got = relations.get(email["Id"], [])
        assert len(got) == len(set(got)), f"a relation doubled on {email['Subject']}"
        assert set(got) == expected_relations(email, who), email["Subject"]
    events = target.records("Event")
    assert Counter(e["M365Sync_Event_Id__c"] for e in events) == Counter(set(meetings))
    assert {e["M365Sync_Event_Id__c"]: e["Subject"] for e in events} == meetings
    for relation in Counter(
        (r["EventId"], r["RelationId"]) for r in target.records("EventRelation")
    ).values():
        assert relation == 1


def sim_meetings(target: SalesforceTarget) -> dict[str, str]:
    """iCalUId → subject (the organizer's) of the meetings the members' calendars hold, not
    cancelled."""
    found: dict[str, str] = {}
    for mailbox in MEMBERS:
        answer = target.sync.control.get(f"/_sim/mailboxes/{mailbox}/events")
        answer.raise_for_status()
        for event in answer.json()["value"]:
            if event.get("isCancelled"):
                continue
            organizer = ((event.get("organizer") or {}).get("emailAddress") or {}).get("address")
            if event["iCalUId"] not in found or organizer == mailbox:
                found[event["iCalUId"]] = event["subject"]
    return found


def sim_message_ids(target: SalesforceTarget, involving: set[str] | None = None) -> set[str]:
    """Message-IDs of the mail the members' synced folders (Inbox, Sent Items) hold,
    involving one of ``involving``."""
    found: set[str] = set()
    for mailbox, folder in product(MEMBERS, ("inbox", "sentitems")):
        answer = target.sync.control.get(
            f"/_sim/mailboxes/{mailbox}/messages", params={"limit": 1_000_000, "folder": folder}
        )
        answer.raise_for_status()
        for message in answer.json()["value"]:
            people = [
                message.get("from") or {},
                *message.get("toRecipients", []),
                *message.get("ccRecipients", []),
            ]
            addresses = {(p.get("emailAddress") or {}).get("address") for p in people}
            if involving is None or addresses & involving:
                found.add(message["internetMessageId"])
    return found


def meeting(
    target: SalesforceTarget, organizer: str, subject: str, day: int, attendees: list[str]
) -> str:
    start = (datetime.now(UTC) + timedelta(days=day)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    fmt = "%Y-%m-%dT%H:%M:%S"
    made = target.sync.control.post(
        f"/_sim/mailboxes/{organizer}/events",
        json={
            "subject": subject,
            "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": a}} for a in attendees],
        },
    )
    made.raise_for_status()
    return str(made.json()["id"])


# -- SIGKILL between Salesforce's answer and the local commit --------------------------------


class WriterProcesses:
    """Writer processes draining the target's organization, each started after the lease
    of the one before has run out (its clock five minutes and more ahead)."""

    def __init__(self, target: SalesforceTarget, tmp_path: Path) -> None:
        self.target = target
        self.script = Path(__file__).with_name("drain_worker.py")
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.tmp_path = tmp_path
        self.started = 0

    def _config(self) -> Path:
        settings = self.target.settings
        config = {
            "database_url": self.target.database.engine.url.render_as_string(hide_password=False),
            "organization_id": self.target.organization_id,
            "round_size": 200,
            "clock_offset_minutes": 6 * self.started,
            "settings": {
                "data_dir": str(settings.data_dir),
                "database_url": settings.resolved_database_url,
                "secret_key": settings.secret_key,
                "salesforce_login_url": settings.salesforce_login_url,
                "ca_bundle": str(settings.ca_bundle),
            },
        }
        path = self.tmp_path / f"writer-{self.started}.json"
        path.write_text(json.dumps(config))
        self.started += 1
        return path

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.script), str(self._config())],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill_when(
        self, method: str, path_regex: str, saved: Callable[[], bool], *, answers: int = 1
    ) -> None:
        """Hold Salesforce's answers to the next ``answers`` ``method`` requests matching
        ``path_regex`` (each is processed, only its answer waits), start a writer, and
        SIGKILL it once ``saved()`` sees Salesforce's side done: the writer never records
        the answer it is waiting for."""
        self.target.control("DELETE", "faults")
        self.target.control(
            "POST",
            "faults",
            json={
                "kind": "delay",
                "method": method,
                "pathRegex": path_regex,
                "delayMs": 20_000,
                "count": answers,
            },
        )
        writer = self.start()
        deadline = time.monotonic() + 90
        try:
            while not (self._fired() and saved()):
                assert writer.poll() is None, (
                    f"the writer ended before {method} {path_regex}: {writer.communicate()}"
                )
                assert time.monotonic() < deadline, f"{method} {path_regex} never came"
                time.sleep(0.05)
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.wait(timeout=30)
            writer.communicate()
            self.target.control("DELETE", "faults")
        assert writer.returncode == -signal.SIGKILL

    def _fired(self) -> bool:
        return any(rule["injected"] for rule in self.target.control("GET", "faults")["value"])

    def finish(self) -> dict[str, Any]:
        final = subprocess.run(
            [sys.executable, str(self.script), str(self._config())],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert final.returncode == 0, final.stderr[-3000:]
        answer: dict[str, Any] = json.loads(final.stdout.strip().splitlines()[-1])
        return answer


@pytest.mark.slow
def test_writers_sigkilled_after_salesforce_answered_leave_no_duplicate(
    target: SalesforceTarget, tmp_path: Path
) -> None:
    """Five writers SIGKILLed at five points — Salesforce has saved emails, looked records
    up, saved relations, saved an Event, deleted an Event — and none recorded the answer:
    the sixth finishes with exactly one record per email and meeting and no relation
    twice."""
    connected(target)
    target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/messages/generate",
        json={"count": 500, "days": 10, "correspondents": CORRESPONDENTS, "seed": 7},
    ).raise_for_status()
    for n in range(20):  # emails in two mailboxes: one EmailMessage, both users related
        for mailbox in (ADELE, ALEX):
            target.sync.deliver(
                mailbox,
                **{
                    "from": PAT,
                    "to": [ADELE],
                    "cc": [ALEX],
                    "subject": f"Shared {n}",
                    "internetMessageId": f"<shared-{n}@fabrikam.example>",
                },
            )
    sync(target, SyncFeature.EMAIL)
    writers = WriterProcesses(target, tmp_path)

    def grew(sobject: str, before: int) -> Callable[[], bool]:
        return lambda: len(target.records(sobject)) > before

    # 1. Salesforce saved 200 EmailMessages; the writer dies before recording it.
    writers.kill_when("PATCH", r"composite/sobjects/EmailMessage/", grew("EmailMessage", 0))
    assert len(target.records("EmailMessage")) == 200
    # 2. The next writer looks those up first; it dies holding the answer.
    writers.kill_when("GET", r"/query", lambda: True)
    # 3. The next saves relations (five collections in one composite) and dies.
    writers.kill_when("POST", r"/composite$", grew("EmailMessageRelation", 0))
    # The world changes meanwhile: meetings, more mail.
    for n in range(4):
        meeting(target, ADELE, f"Review {n}", n + 1, [PAT, ALEX])
    doomed = meeting(target, ALEX, "Call with Sam", 6, [SAM])
    target.sync.deliver(
        ADELE, **{"from": SAM, "to": [ADELE], "subject": "Late", "internetMessageId": "<late@x>"}
    )
    sync(target, SyncFeature.EMAIL, SyncFeature.CALENDAR)
    # 4. Salesforce saved the Events; the writer dies. All five: "Call with Sam" must be in
    # Salesforce for step 5 to delete it. The writer takes pending writes 200 at a time by
    # activity id, and how many the killed writers left pending varies, so the Events may
    # come in two requests: both answers are held.
    events = {f"Review {n}" for n in range(4)} | {"Call with Sam"}
    writers.kill_when(
        "PATCH",
        r"composite/sobjects/Event/",
        lambda: events <= {e["Subject"] for e in target.records("Event")},
        answers=2,
    )
    # 5. The meeting is deleted in Outlook; Salesforce deletes its Event; the writer dies.
    target.sync.control.delete(f"/_sim/mailboxes/{ALEX}/events/{doomed}").raise_for_status()
    sync(target, SyncFeature.CALENDAR)
    writers.kill_when(
        "DELETE",
        r"composite/sobjects",
        lambda: (
            any(e["Subject"] == "Call with Sam" for e in target.records("Event", deleted=True))
            and all(e["Subject"] != "Call with Sam" for e in target.records("Event"))
        ),
    )

    final = writers.finish()

    assert final["status"] == "drained", final
    meetings = sim_meetings(target)
    assert len(meetings) == 4
    messages = sim_message_ids(target)
    assert len(messages) == 521
    assert_exactly_once(target, messages, meetings)
    assert len(target.records("EmailMessageRelation")) == 2 * 501 + 3 * 20
    again = writers.finish()
    assert again["synced"] == 0
    assert len(target.records("EmailMessage")) == 521


# -- a soak with faults on both sides --------------------------------------------------------

SOAK_MAILBOXES = (ADELE, ALEX)
CUSTOMERS = (PAT, SAM, NINA, LEE)
STRANGER = "someone@unknown.example"


def _soak_faults(target: SalesforceTarget) -> None:
    """About one request in ten fails, on each side."""
    target.sync.control.post(
        "/_sim/faults",
        json={
            "rate": 0.1,
            "seed": 13,
            "kinds": ["429", "500", "503", "504", "drop"],
            "pathRegex": "/v1.0/",
            "retryAfter": 1,
        },
    ).raise_for_status()
    for kind, rate, seed in (
        ("UNABLE_TO_LOCK_ROW", 0.04, 1),
        ("SERVER_UNAVAILABLE", 0.04, 2),
        ("drop", 0.02, 3),
    ):
        target.control("POST", "faults", json={"kind": kind, "rate": rate, "seed": seed})


@pytest.mark.slow
def test_soak_with_faults_on_both_sides_ends_with_each_email_and_meeting_once(
    target: SalesforceTarget,
) -> None:
    """Mail arrives (some in both mailboxes, some from strangers), moves and is deleted;
    meetings are created, moved, renamed, cancelled and deleted; every round syncs and
    drains while 10 % of Graph requests fail (429 with Retry-After, 5xx, dropped
    connections) and 10 % of Salesforce's (``UNABLE_TO_LOCK_ROW``, ``SERVER_UNAVAILABLE``,
    lost answers), sessions end (``INVALID_SESSION_ID``) and once the org's daily limit is
    reached (``REQUEST_LIMIT_EXCEEDED``). Then sfsim holds exactly one EmailMessage per
    message with exactly its relations, and one Event per meeting still held."""
    rng = random.Random(20261207)
    connected(target)
    target.sync.configure(delete_policy="delete")
    target.sync.sim_config(throttling_enabled=False)
    target.sync.engine.sync_page_size = 3  # many pages: many chances for faults
    _soak_faults(target)
    clock = datetime.now(UTC)
    statuses: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    delivered: list[tuple[str, str]] = []
    meetings: list[tuple[str, str]] = []

    def drain() -> None:
        nonlocal clock
        clock += timedelta(hours=7)  # time passes between drains: back-offs run out
        at = clock
        statuses[target.drain(now=lambda: at).status] += 1

    for round_number in range(5):
        for n in range(12):
            mailbox = rng.choice(SOAK_MAILBOXES)
            other = next(m for m in SOAK_MAILBOXES if m != mailbox)
            customer = rng.choice(CUSTOMERS) if n % 6 else STRANGER
            spec: dict[str, Any] = {
                "from": customer,
                "to": [mailbox],
                "subject": f"r{round_number} n{n}",
                "internetMessageId": f"<r{round_number}-{n}@soak.example>",
            }
            if rng.random() < 0.3:  # the same email reaches both reps
                spec["cc"] = [other]
                target.sync.deliver(other, **spec)
            elif rng.random() < 0.3:  # a rep writes to a customer
                spec.update({"from": mailbox, "to": [customer]})
            made = target.sync.deliver(mailbox, **spec)
            delivered.append((mailbox, made["immutableId"]))
        for _ in range(3):
            mailbox, item = delivered.pop(rng.randrange(len(delivered)))
            if rng.random() < 0.5:
                target.sync.control.delete(f"/_sim/mailboxes/{mailbox}/messages/{item}")
            else:
                target.sync.control.post(
                    f"/_sim/mailboxes/{mailbox}/messages/{item}/move",
                    json={"destination": rng.choice(["archive", "inbox"])},
                ).raise_for_status()
        for n in range(3):
            organizer = rng.choice(SOAK_MAILBOXES)
            attendees = [rng.choice(CUSTOMERS)]
            if rng.random() < 0.5:
                attendees.append(next(m for m in SOAK_MAILBOXES if m != organizer))
            event = meeting(
                target, organizer, f"m{round_number} {n}", rng.randint(1, 40), attendees
            )
            meetings.append((organizer, event))
        for _ in range(2):
            organizer, event = meetings.pop(rng.randrange(len(meetings)))
            change = rng.random()
            path = f"/_sim/mailboxes/{organizer}/events/{event}"
            if change < 0.5:
                target.sync.control.patch(
                    path, json={"subject": f"moved in r{round_number}"}
                ).raise_for_status()
                meetings.append((organizer, event))
            elif change < 0.75:
                target.sync.control.post(f"{path}/cancel", json={}).raise_for_status()
            else:
                target.sync.control.delete(path).raise_for_status()
        for mailbox in SOAK_MAILBOXES:
            for feature in (SyncFeature.EMAIL, SyncFeature.CALENDAR):
                outcomes[target.sync.sync(mailbox, feature).outcome] += 1
        if round_number == 1:
            target.control("POST", "faults", json={"kind": "REQUEST_LIMIT_EXCEEDED"})
        target.control("POST", "faults", json={"kind": "INVALID_SESSION_ID"})
        drain()
        target.control("POST", "sessions/expire")
        drain()
    injected: Counter[str] = Counter()
    for rule in target.control("GET", "faults")["value"]:
        injected[rule["kind"]] += rule["injected"]
    graph_faults = target.sync.control.get("/_sim/faults").json()["injectedCount"]
    target.control("DELETE", "faults")
    target.sync.control.delete("/_sim/faults").raise_for_status()
    for mailbox in SOAK_MAILBOXES:
        for feature in (SyncFeature.EMAIL, SyncFeature.CALENDAR):
            assert target.sync.sync(mailbox, feature).outcome == "ok"
    for _ in range(3):
        drain()

    assert_exactly_once(target, sim_message_ids(target, set(CUSTOMERS)), sim_meetings(target))
    assert len(target.records("EmailMessage")) >= 30
    assert len(target.records("Event")) >= 5
    assert target.records("Event", deleted=True) != target.records("Event")  # some went
    with target.database.session() as session:
        states = Counter(
            row.state
            for row in session.query(SalesforceActivityRecord).filter_by(
                organization_id=target.organization_id
            )
        )
    assert set(states) <= {WriteState.SYNCED, WriteState.UNMATCHED}, states
    # The faults happened, and the writer went through them without needing a person.
    print(f"faults: graph {graph_faults}, salesforce {injected}; drains {statuses}")
    assert graph_faults >= 3 and outcomes["ok"] > 0
    assert injected["UNABLE_TO_LOCK_ROW"] + injected["SERVER_UNAVAILABLE"] >= 3, injected
    assert injected["REQUEST_LIMIT_EXCEEDED"] == 1 and statuses[DrainStatus.PAUSED] >= 1
    assert injected["INVALID_SESSION_ID"] >= 3
    assert statuses[DrainStatus.NEEDS_RECONNECT] == 0, statuses
