"""Reliability against m365sim: random faults while the world changes, SIGKILLed first
syncs, and the CRM compared with what m365sim holds at the end."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from m365sync.crm.models import ActivityKind
from m365sync.sync.features import SyncFeature
from support.crashes import first_sync_killed_again_and_again
from support.sync_world import SyncWorld

MAILBOXES = ("adele@contoso.com", "alex@contoso.com")
CONTACTS = [f"buyer{i}@fabrikam.com" for i in range(5)]


def crm_emails(world: SyncWorld) -> dict[str, set[str]]:
    """internetMessageId → member ids linked (current links only)."""
    with world.crm() as crm:
        return {
            a.external_id: {m.member_id for m in crm.activity_members(a.id)}
            for a in crm.activities(ActivityKind.EMAIL)
        }


def sim_emails(world: SyncWorld) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = {}
    for mailbox in MAILBOXES:
        for folder in ("inbox", "sentitems"):
            for message in world.sim_messages(mailbox, folder):
                people = [
                    message.get("from") or {},
                    *message.get("toRecipients", []),
                    *message.get("ccRecipients", []),
                ]
                if any((p.get("emailAddress") or {}).get("address") in CONTACTS for p in people):
                    truth.setdefault(message["internetMessageId"], set()).add(
                        world.members[mailbox]
                    )
    return truth


def crm_events(world: SyncWorld) -> dict[str, tuple[frozenset[str], str, Any, bool]]:
    """iCalUId → (member ids linked, subject, start, cancelled)."""
    with world.crm() as crm:
        return {
            a.external_id: (
                frozenset(m.member_id for m in crm.activity_members(a.id)),
                a.subject,
                a.starts_at,
                a.is_cancelled,
            )
            for a in crm.activities(ActivityKind.EVENT)
            if crm.activity_members(a.id)
        }


def sim_events(world: SyncWorld) -> dict[str, tuple[frozenset[str], str, Any, bool]]:
    holders: dict[str, set[str]] = {}
    versions: dict[str, tuple[str, Any, bool]] = {}
    for mailbox in MAILBOXES:
        for event in world.control.get(f"/_sim/mailboxes/{mailbox}/events").json()["value"]:
            holders.setdefault(event["iCalUId"], set()).add(world.members[mailbox])
            start = datetime.fromisoformat(event["start"]["dateTime"]).replace(tzinfo=UTC)
            versions[event["iCalUId"]] = (event["subject"], start, bool(event["isCancelled"]))
    return {uid: (frozenset(holders[uid]), *versions[uid]) for uid in holders}


def _slot(rng: random.Random) -> tuple[dict[str, str], dict[str, str]]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
        days=rng.randint(1, 60), hours=rng.randint(0, 8)
    )
    end = start + timedelta(minutes=30)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return (
        {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
    )


@pytest.mark.slow
def test_soak_with_random_faults_converges_to_mailbox_truth(world: SyncWorld) -> None:
    """Mail arrives, moves and is deleted, meetings are created, moved and cancelled, while
    10% of Graph requests fail (429 with Retry-After, 500/503/504, dropped connections,
    expired cursors): in the end the CRM holds exactly what the mailboxes hold."""
    rng = random.Random(20261130)
    for address in CONTACTS:
        world.add_contact(address)
    world.configure(delete_policy="delete")
    world.sim_config(throttling_enabled=False)
    world.engine.sync_page_size = 10  # many pages: many chances for faults
    world.control.post(
        "/_sim/faults",
        json={
            "rate": 0.1,
            "seed": 11,
            "kinds": ["429", "500", "503", "504", "drop", "expiredCursor"],
            "pathRegex": "/v1.0/",
            "retryAfter": 1,
        },
    ).raise_for_status()
    outcomes: Counter[str] = Counter()
    delivered: list[tuple[str, str]] = []
    meetings: list[tuple[str, str]] = []  # (organizer mailbox, event id)
    for round_number in range(6):
        for _ in range(15):
            mailbox = rng.choice(MAILBOXES)
            other = next(m for m in MAILBOXES if m != mailbox)
            spec: dict[str, Any] = {
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
            delivered.append((mailbox, made["immutableId"]))
        for _ in range(4):
            mailbox, item = delivered.pop(rng.randrange(len(delivered)))
            if rng.random() < 0.5:
                world.control.delete(f"/_sim/mailboxes/{mailbox}/messages/{item}")
            else:
                target = rng.choice(["archive", "sentitems", "inbox"])
                world.control.post(
                    f"/_sim/mailboxes/{mailbox}/messages/{item}/move", json={"destination": target}
                )
        for _ in range(4):  # meetings: some with the other rep, all with a customer
            organizer = rng.choice(MAILBOXES)
            other = next(m for m in MAILBOXES if m != organizer)
            attendees = [{"emailAddress": {"address": rng.choice(CONTACTS)}}]
            if rng.random() < 0.5:
                attendees.append({"emailAddress": {"address": other}})
            start, end = _slot(rng)
            event = world.control.post(
                f"/_sim/mailboxes/{organizer}/events",
                json={
                    "subject": f"m{round_number} {rng.random():.6f}",
                    "start": start,
                    "end": end,
                    "attendees": attendees,
                },
            )
            event.raise_for_status()
            meetings.append((organizer, event.json()["id"]))
        for _ in range(2):
            organizer, event_id = meetings.pop(rng.randrange(len(meetings)))
            if rng.random() < 0.5:
                start, end = _slot(rng)
                world.control.patch(
                    f"/_sim/mailboxes/{organizer}/events/{event_id}",
                    json={"start": start, "end": end},
                ).raise_for_status()
                meetings.append((organizer, event_id))
            else:
                world.control.post(
                    f"/_sim/mailboxes/{organizer}/events/{event_id}/cancel", json={}
                ).raise_for_status()
        for mailbox in MAILBOXES:
            outcomes[world.sync(mailbox).outcome] += 1
            outcomes[world.sync(mailbox, SyncFeature.CALENDAR).outcome] += 1
    injected = world.control.get("/_sim/faults").json()
    world.control.delete("/_sim/faults").raise_for_status()
    for mailbox in MAILBOXES:
        for feature in (SyncFeature.EMAIL, SyncFeature.CALENDAR):
            assert world.sync(mailbox, feature).outcome == "ok"
            assert world.sync(mailbox, feature).outcome == "ok"

    assert crm_emails(world) == sim_emails(world)
    events = sim_events(world)
    assert len(events) >= 12
    assert crm_events(world) == events
    assert injected["injectedCount"] >= 3
    assert outcomes["ok"] > 0


@pytest.mark.slow
def test_sigkill_during_a_large_first_sync_converges_without_duplicates(
    world: SyncWorld, tmp_path: Path
) -> None:
    for address in CONTACTS:
        world.add_contact(address)
    world.generate("adele@contoso.com", 12000, correspondents=CONTACTS, days=20, seed=3)
    world.sim_config(throttling_enabled=False)
    run = first_sync_killed_again_and_again(
        world, tmp_path, "adele@contoso.com", pages=(5, 20), final_timeout=120
    )
    assert run.kills == 4  # every run was killed mid-sync, none finished
    assert run.outcome == "ok", run.stderr[-2000:]

    with world.crm() as crm:
        external_ids = [a.external_id for a in crm.activities(ActivityKind.EMAIL)]
    truth = {m["internetMessageId"] for m in world.sim_messages("adele@contoso.com", "inbox")}
    assert len(external_ids) == len(set(external_ids)) == 12000
    assert set(external_ids) == truth


@pytest.mark.realistic_latency
def test_soak_under_realistic_latency_and_faults_loses_and_doubles_nothing(
    world: SyncWorld,
) -> None:
    """Graph's latency (m365sim's realistic model: requests take time, so the mailbox
    concurrency limit bites) and 10% failed requests, while mail arrives (with attachments,
    in threads, some to both reps), moves and is deleted: in the end every email the
    mailboxes hold is one activity, with its attachments listed once and its thread."""
    rng = random.Random(20261207)
    for address in CONTACTS:
        world.add_contact(address)
    world.configure(delete_policy="delete")
    world.engine.sync_page_size = 25
    world.control.post(
        "/_sim/faults",
        json={
            "rate": 0.1,
            "seed": 7,
            "kinds": ["429", "500", "503", "504", "drop", "expiredCursor"],
            "pathRegex": "/v1.0/",
            "retryAfter": 1,
        },
    ).raise_for_status()
    delivered: list[tuple[str, str]] = []
    roots: list[str] = []
    files: dict[str, list[str]] = {}  # internetMessageId -> attachment names
    for round_number in range(3):
        for n in range(20):
            mailbox = rng.choice(MAILBOXES)
            spec: dict[str, Any] = {
                "from": rng.choice(CONTACTS),
                "subject": f"s{round_number}-{n}",
                "internetMessageId": f"<s{round_number}-{n}-{rng.getrandbits(32)}@fabrikam.com>",
            }
            if rng.random() < 0.4:
                spec["attachments"] = [
                    {"name": f"file-{round_number}-{n}-{k}.pdf", "size": rng.randint(1, 5000)}
                    for k in range(rng.randint(1, 3))
                ]
            if roots and rng.random() < 0.3:
                root = rng.choice(roots)
                spec["internetMessageHeaders"] = [
                    {"name": "In-Reply-To", "value": root},
                    {"name": "References", "value": root},
                ]
            else:
                roots.append(spec["internetMessageId"])
            files[spec["internetMessageId"]] = [a["name"] for a in spec.get("attachments", [])]
            if rng.random() < 0.25:  # the same email reaches both reps
                spec["to"] = list(MAILBOXES)
                world.deliver(next(m for m in MAILBOXES if m != mailbox), **spec)
            made = world.deliver(mailbox, **spec)
            delivered.append((mailbox, made["immutableId"]))
        for _ in range(3):
            mailbox, item = delivered.pop(rng.randrange(len(delivered)))
            if rng.random() < 0.5:
                world.control.delete(f"/_sim/mailboxes/{mailbox}/messages/{item}")
            else:
                world.control.post(
                    f"/_sim/mailboxes/{mailbox}/messages/{item}/move",
                    json={"destination": "archive"},
                )
        for mailbox in MAILBOXES:
            world.sync(mailbox)
    injected = world.control.get("/_sim/faults").json()
    world.control.delete("/_sim/faults").raise_for_status()
    for mailbox in MAILBOXES:
        assert world.sync(mailbox).outcome == "ok"

    assert crm_emails(world) == sim_emails(world)
    with world.crm() as crm:
        emails = crm.activities(ActivityKind.EMAIL)
    assert len({a.external_id for a in emails}) == len(emails)
    for activity in emails:
        assert [a["name"] for a in activity.attachments] == files[activity.external_id]
        assert activity.conversation_id
    assert injected["injectedCount"] >= 3
    faults = Counter(r["status"] for r in world.requests())
    assert faults[429] + faults[500] + faults[503] + faults[504] > 0
