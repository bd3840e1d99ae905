"""Reliability over EWS, as the Graph path has it: 10 % of EWS requests fail
(ErrorServerBusy with BackOffMilliseconds, ErrorInternalServerError, bare 503/504 from a
load balancer, dropped connections, ErrorInvalidSyncStateData) while mail arrives, moves
and is deleted, and the CRM converges to what the mailboxes hold; a first sync over EWS
SIGKILLed again and again converges without a duplicate; Calendar Sync under the same
faults, with meetings made, moved and deleted on both sides, converges to one CRM event per
meeting and one Exchange item per CRM-made event."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from m365sync.crm.models import ActivityKind
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.sync.features import SyncFeature
from support.calendars import at, crm_events, gtime, outlook_event, outlook_events
from support.crashes import first_sync_killed_again_and_again
from support.ews_world import exchange_only
from support.sync_world import SyncWorld

MAILBOXES = ("adele@contoso.com", "alex@contoso.com")
CONTACTS = [f"buyer{i}@fabrikam.com" for i in range(5)]


@pytest.fixture
def world(world: SyncWorld) -> Iterator[SyncWorld]:
    yield exchange_only(world)
    close_exchange_connections()


def crm_emails(world: SyncWorld) -> dict[str, set[str]]:
    """internetMessageId → member ids linked (current links only)."""
    with world.crm() as crm:
        return {
            a.external_id: {m.member_id for m in crm.activity_members(a.id)}
            for a in crm.activities(ActivityKind.EMAIL)
            if crm.activity_members(a.id)
        }


def sim_emails(world: SyncWorld) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = {}
    for mailbox in MAILBOXES:
        for folder in ("inbox", "sentitems"):
            for message in world.sim_messages(mailbox, folder):
                people = [message.get("from") or {}, *message.get("toRecipients", [])]
                if any((p.get("emailAddress") or {}).get("address") in CONTACTS for p in people):
                    truth.setdefault(message["internetMessageId"], set()).add(
                        world.members[mailbox]
                    )
    return truth


def inject_ews_faults(world: SyncWorld, *, seed: int) -> None:
    """10 % of EWS requests fail, of every kind an Exchange Server and its load balancer
    produce (ErrorServerBusy with BackOffMilliseconds, 500, 503, 504, dropped connections,
    ErrorInvalidSyncStateData)."""
    world.control.post(
        "/_sim/faults",
        json={
            "rate": 0.1,
            "seed": seed,
            "kinds": ["429", "500", "503", "504", "drop", "expiredCursor"],
            "pathRegex": "/EWS/",
            "backOffMs": 200,
        },
    ).raise_for_status()


@pytest.mark.slow
def test_random_ews_faults_converge_to_mailbox_truth(world: SyncWorld) -> None:
    rng = random.Random(20261207)
    for address in CONTACTS:
        world.add_contact(address)
    world.configure(delete_policy="delete")
    world.sim_config(throttling_enabled=False)
    world.engine.sync_page_size = 10  # many pages: many chances for faults
    inject_ews_faults(world, seed=17)
    outcomes: Counter[str] = Counter()
    delivered: list[tuple[str, str]] = []
    for round_number in range(5):
        for _ in range(12):
            mailbox = rng.choice(MAILBOXES)
            other = next(m for m in MAILBOXES if m != mailbox)
            spec: dict[str, object] = {
                "from": rng.choice(CONTACTS),
                "subject": f"r{round_number} {rng.random():.6f}",
            }
            if rng.random() < 0.3:  # the same email reaches both reps
                spec["to"] = list(MAILBOXES)
                spec["internetMessageId"] = (
                    f"<shared-{round_number}-{rng.getrandbits(32)}@fabrikam.com>"
                )
                world.deliver(other, **spec)
            made = world.deliver(mailbox, **spec)
            delivered.append((mailbox, made["id"]))
        for _ in range(4):
            mailbox, item = delivered.pop(rng.randrange(len(delivered)))
            if rng.random() < 0.5:
                world.control.delete(f"/_sim/mailboxes/{mailbox}/messages/{item}")
            else:
                world.control.post(
                    f"/_sim/mailboxes/{mailbox}/messages/{item}/move",
                    json={"destination": rng.choice(["sentitems", "inbox"])},
                )
        for mailbox in MAILBOXES:
            outcomes[world.sync(mailbox).outcome] += 1
    injected = world.control.get("/_sim/faults").json()
    world.control.delete("/_sim/faults").raise_for_status()
    for mailbox in MAILBOXES:
        assert world.sync(mailbox).outcome == "ok"
        assert world.sync(mailbox).outcome == "ok"

    assert crm_emails(world) == sim_emails(world)
    assert injected["injectedCount"] >= 3
    assert outcomes["ok"] > 0


@pytest.mark.slow
def test_sigkill_during_a_first_sync_over_ews_converges_without_duplicates(
    world: SyncWorld, tmp_path: Path
) -> None:
    for address in CONTACTS:
        world.add_contact(address)
    world.generate("adele@contoso.com", 3000, correspondents=CONTACTS, days=20, seed=3)
    world.sim_config(throttling_enabled=False)
    run = first_sync_killed_again_and_again(
        world, tmp_path, "adele@contoso.com", pages=(2, 5), final_timeout=600
    )
    assert run.kills == 4  # every run was killed mid-sync, none finished
    assert run.outcome == "ok", run.stderr[-2000:]

    with world.crm() as crm:
        external_ids = [a.external_id for a in crm.activities(ActivityKind.EMAIL)]
    truth = {m["internetMessageId"] for m in world.sim_messages("adele@contoso.com", "inbox")}
    assert len(external_ids) == len(set(external_ids)) == 3000
    assert set(external_ids) == truth


@pytest.mark.slow
def test_random_ews_faults_keep_calendar_sync_exact(world: SyncWorld) -> None:
    """10 % of EWS requests fail while meetings are made, moved and deleted in Exchange and
    in the CRM: the CRM ends with one event per Exchange meeting, and Exchange with exactly
    one item per CRM-made event (a create retried after a lost answer is not doubled)."""
    rng = random.Random(20261208)
    world.sim_config(throttling_enabled=False)
    world.engine.sync_page_size = 10
    inject_ews_faults(world, seed=23)
    outcomes: Counter[str] = Counter()
    made_in_crm: list[str] = []
    deleted: set[str] = set()
    for round_number in range(4):
        for index in range(6):
            mailbox = rng.choice(MAILBOXES)
            start = at(rng.randrange(1, 20), rng.randrange(8, 17))
            outlook_event(
                world,
                mailbox,
                subject=f"x{round_number}.{index}",
                start=gtime(start),
                end=gtime(start + (at(0, 16) - at(0, 15))),
            )
        for index in range(3):
            mailbox = rng.choice(MAILBOXES)
            start = at(rng.randrange(1, 20), rng.randrange(8, 17))
            subject = f"c{round_number}.{index}"
            with world.crm() as crm:
                crm.crm_save_event(
                    owner_member_id=world.members[mailbox],
                    subject=subject,
                    starts_at=start,
                    ends_at=start + (at(0, 16) - at(0, 15)),
                )
            made_in_crm.append(subject)
        mailbox = rng.choice(MAILBOXES)
        existing = outlook_events(world, mailbox)
        if existing:
            gone = rng.choice(existing)
            world.control.delete(f"/_sim/mailboxes/{mailbox}/events/{gone['id']}")
            deleted.add(gone["subject"])
        for mailbox in MAILBOXES:
            outcomes[world.sync(mailbox, SyncFeature.CALENDAR).outcome] += 1
    injected = world.control.get("/_sim/faults").json()
    world.control.delete("/_sim/faults").raise_for_status()
    for mailbox in MAILBOXES:
        assert world.sync(mailbox, SyncFeature.CALENDAR).outcome == "ok"
        assert world.sync(mailbox, SyncFeature.CALENDAR).outcome == "ok"

    in_exchange = Counter(
        (e["iCalUId"], e["subject"])
        for mailbox in MAILBOXES
        for e in outlook_events(world, mailbox)
    )
    assert max(in_exchange.values()) == 1
    in_crm = Counter((e.external_id, e.subject) for e in crm_events(world))
    assert in_crm == in_exchange
    subjects = Counter(subject for _, subject in in_exchange)
    assert {s: subjects[s] for s in made_in_crm} == {
        s: 0 if s in deleted else 1 for s in made_in_crm
    }  # none lost, none doubled
    assert injected["injectedCount"] >= 3
    assert outcomes["ok"] > 0
