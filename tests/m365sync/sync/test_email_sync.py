"""Email Sync against m365sim: what ends up in the CRM, and what it costs in requests."""

from __future__ import annotations

import pytest

from m365sync.crm.models import NAME_MAX_CHARS, SUBJECT_MAX_CHARS, ActivityKind, PersonKind
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStatus
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"


@pytest.fixture
def world(db_world: SyncWorld) -> SyncWorld:
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_world


ALEX = "alex@contoso.com"


def kim(world: SyncWorld) -> tuple[str, str]:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    return account, world.add_contact("kim@fabrikam.com", account, "Kim Akers")


def subjects(world: SyncWorld) -> list[str]:
    with world.crm() as crm:
        return sorted(a.subject for a in crm.activities(ActivityKind.EMAIL))


def test_logs_only_mail_involving_known_people_and_links_who_and_what(world: SyncWorld) -> None:
    fabrikam, contact = kim(world)
    litware = world.add_account("Litware", ["litware.com"])
    lead = world.add_lead("pat@example.net")
    world.deliver(
        ADELE,
        **{
            "from": {"name": "Kim Akers", "address": "Kim@Fabrikam.com"},
            "subject": "Pricing",
            "body": "<p>Hello <b>Adele</b></p>",
        },
    )
    world.deliver(
        ADELE, **{"from": "pat@example.net", "cc": ["someone@litware.com"], "subject": "Lead mail"}
    )
    world.deliver(ADELE, **{"from": "stranger@example.org", "subject": "Unknown sender"})
    world.deliver(ADELE, **{"from": ALEX, "subject": "Internal only"})

    result = world.sync(ADELE)

    assert result.outcome == "ok", (result.error, result.fix)
    assert result.status == UnitStatus.ACTIVE
    assert subjects(world) == ["Lead mail", "Pricing"]
    with world.crm() as crm:
        by_subject = {a.subject: a for a in crm.activities(ActivityKind.EMAIL)}
        pricing = by_subject["Pricing"]
        assert crm.activity_people(pricing.id) == [(PersonKind.CONTACT, contact)]
        assert crm.activity_accounts(pricing.id) == [fabrikam]
        assert (
            pricing.body is not None and "Hello Adele" in pricing.body and "<b>" not in pricing.body
        )
        lead_mail = by_subject["Lead mail"]
        assert crm.activity_people(lead_mail.id) == [(PersonKind.LEAD, lead)]
        assert crm.activity_accounts(lead_mail.id) == [litware]


def test_one_email_in_two_mailboxes_is_one_activity_linked_to_both(world: SyncWorld) -> None:
    kim(world)
    spec = {
        "from": "kim@fabrikam.com",
        "to": [ADELE],
        "cc": [ALEX],
        "subject": "Proposal",
        "internetMessageId": "<proposal-1@fabrikam.com>",
    }
    world.deliver(ADELE, **spec)
    world.deliver(ALEX, **spec)

    assert world.sync(ADELE).outcome == "ok"
    assert world.sync(ALEX).outcome == "ok"
    assert world.sync(ADELE).outcome == "ok"

    with world.crm() as crm:
        (activity,) = crm.activities(ActivityKind.EMAIL)
        members = {m.member_id for m in crm.activity_members(activity.id)}
    assert members == {world.members[ADELE], world.members[ALEX]}


def test_privacy_rules(world: SyncWorld) -> None:
    kim(world)
    world.configure(
        excluded_domains=["hr-partner.com"],
        excluded_addresses=["ceo@fabrikam.com"],
        headers_only=True,
    )
    world.deliver(
        ADELE,
        **{"from": "kim@fabrikam.com", "cc": ["x@hr-partner.com"], "subject": "Excluded domain"},
    )
    world.deliver(
        ADELE,
        **{"from": "kim@fabrikam.com", "cc": ["CEO@fabrikam.com"], "subject": "Excluded address"},
    )
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Kept", "body": "secret body"})
    world.deliver(
        ADELE,
        **{"from": "kim@fabrikam.com", "subject": "Draft", "isDraft": True, "folder": "drafts"},
    )

    assert world.sync(ADELE).outcome == "ok"

    with world.crm() as crm:
        (kept,) = crm.activities(ActivityKind.EMAIL)
    assert kept.subject == "Kept"
    assert kept.headers_only and kept.body is None
    delta = [r for r in world.requests() if r["path"].endswith("/delta")]
    assert delta and all("body" not in r["query"].replace("bodyPreview", "") for r in delta)


def test_internal_mail_and_unknown_senders_when_the_admin_chooses(world: SyncWorld) -> None:
    world.configure(log_internal=True, create_leads=True)
    world.deliver(ADELE, **{"from": ALEX, "subject": "Internal"})
    world.deliver(
        ADELE,
        **{"from": {"name": "Nina Nowak", "address": "nina@newco.example"}, "subject": "Inquiry"},
    )

    assert world.sync(ADELE).outcome == "ok"

    assert subjects(world) == ["Inquiry"]  # internal mail involves no CRM person either
    with world.crm() as crm:
        (lead,) = crm.leads()
    assert (lead.email, lead.first_name, lead.last_name, lead.source) == (
        "nina@newco.example",
        "Nina",
        "Nowak",
        "email_sync",
    )


def test_backfill_window_limits_the_first_sync(world: SyncWorld) -> None:
    kim(world)
    world.deliver(
        ADELE, **{"from": "kim@fabrikam.com", "subject": "Old", "receivedDateTime": "-40d"}
    )
    world.deliver(
        ADELE, **{"from": "kim@fabrikam.com", "subject": "Recent", "receivedDateTime": "-3d"}
    )

    assert world.sync(ADELE).outcome == "ok"

    assert subjects(world) == ["Recent"]
    first = next(r for r in world.requests() if r["path"].endswith("/delta"))
    assert "receivedDateTime+ge" in first["query"]


def test_a_backfill_window_busier_than_graph_filters_is_synced_whole(world: SyncWorld) -> None:
    """Graph returns at most 5,000 messages for a filtered delta: a busier window must not
    be cut off, and older mail stays outside the window, now and in later rounds."""
    contacts = [f"buyer{i}@fabrikam.com" for i in range(3)]
    for address in contacts:
        world.add_contact(address)
    world.sim_config(throttling_enabled=False)
    world.engine.sync_page_size = 1000
    world.generate(ADELE, 6200, correspondents=contacts, days=20, seed=7)
    world.deliver(ADELE, **{"from": contacts[0], "subject": "Old", "receivedDateTime": "-45d"})
    world.clear_requests()

    assert world.sync(ADELE).outcome == "ok"

    # Counted first, so no filtered page is read only to be thrown away: the pages of each
    # folder and one count per folder.
    graph = [r for r in world.requests() if r["path"].startswith("/v1.0")]
    inbox_delta = [r for r in graph if "/inbox/messages/delta" in r["path"]]
    assert len(inbox_delta) == 7  # 6,201 messages, 1,000 a page
    assert not any("filter" in r["query"] for r in inbox_delta)
    assert len(graph) == 7 + 1 + 2  # Inbox pages, Sent Items' page, a count per folder
    # Both folders' windows are counted together before any page is read: one round trip
    # of counting, not one per folder between the folders' rounds.
    counts = [i for i, r in enumerate(graph) if not r["path"].endswith("/delta")]
    assert counts == [0, 1]
    assert {graph[i]["path"].split("/")[-2] for i in counts} == {"inbox", "sentitems"}
    # Then the folders are read side by side: Sent Items' round starts with the Inbox's,
    # not after its seven pages.
    inbox_pages = [i for i, r in enumerate(graph) if "/inbox/messages/delta" in r["path"]]
    sent_pages = [i for i, r in enumerate(graph) if "/sentitems/messages/delta" in r["path"]]
    assert sent_pages[0] < inbox_pages[1]

    in_window = {
        m["internetMessageId"] for m in world.sim_messages(ADELE, "inbox") if m["subject"] != "Old"
    }
    with world.crm() as crm:
        logged = [a.external_id for a in crm.activities(ActivityKind.EMAIL)]
    assert len(in_window) == 6200
    assert len(logged) == len(set(logged)) == 6200
    assert set(logged) == in_window

    # The next rounds are incremental and keep the window: a change to the old message
    # does not bring it in, new mail does.
    old = next(m for m in world.sim_messages(ADELE, "inbox") if m["subject"] == "Old")
    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/messages/{old['id']}", json={"isRead": True}
    ).raise_for_status()
    world.deliver(ADELE, **{"from": contacts[1], "subject": "New"})
    world.clear_requests()
    assert world.sync(ADELE).outcome == "ok"
    assert len([r for r in world.requests() if r["path"].startswith("/v1.0")]) == 2
    assert "Old" not in subjects(world) and "New" in subjects(world)


def test_incremental_pass_costs_one_request_per_folder_and_follows_changes(
    world: SyncWorld,
) -> None:
    kim(world)
    first = world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "One"})
    assert world.sync(ADELE).outcome == "ok"

    world.clear_requests()
    assert world.sync(ADELE).outcome == "ok"
    graph = [r for r in world.requests() if r["path"].startswith("/v1.0")]
    assert len(graph) == 2  # Inbox + Sent Items, one deltaLink round each
    assert all(r["path"].endswith("/messages/delta") and "deltatoken" in r["query"] for r in graph)

    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Two"})
    world.control.post(
        f"/_sim/mailboxes/{ADELE}/messages/{first['immutableId']}/move",
        json={"destination": "sentitems"},
    ).raise_for_status()
    assert world.sync(ADELE).outcome == "ok"

    assert subjects(world) == ["One", "Two"]  # the move did not duplicate "One"
    with world.crm() as crm:
        one = next(a for a in crm.activities(ActivityKind.EMAIL) if a.subject == "One")
        (link,) = crm.activity_members(one.id)
    assert link.graph_item_id == first["immutableId"]


def test_deletions_keep_the_crm_record_by_default_or_delete_when_configured(
    world: SyncWorld,
) -> None:
    kim(world)
    a = world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "A"})
    b = world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "B"})
    assert world.sync(ADELE).outcome == "ok"

    world.control.delete(f"/_sim/mailboxes/{ADELE}/messages/{a['immutableId']}").raise_for_status()
    assert world.sync(ADELE).outcome == "ok"
    assert subjects(world) == ["A", "B"]

    world.configure(delete_policy="delete")
    world.control.delete(f"/_sim/mailboxes/{ADELE}/messages/{b['immutableId']}").raise_for_status()
    assert world.sync(ADELE).outcome == "ok"
    assert subjects(world) == ["A"]


def copies(world: SyncWorld) -> dict[str, set[tuple[str, str, str]]]:
    """Subject of each live email activity → its copies (member, folder, item id)."""
    with world.crm() as crm:
        return {
            a.subject: {
                (m.member_id, m.folder, m.graph_item_id) for m in crm.activity_members(a.id)
            }
            for a in crm.activities(ActivityKind.EMAIL)
        }


def delete_message(world: SyncWorld, mailbox: str, message: dict[str, object]) -> None:
    world.control.delete(
        f"/_sim/mailboxes/{mailbox}/messages/{message['immutableId']}"
    ).raise_for_status()


def test_a_copy_in_another_folder_keeps_the_email_until_the_last_copy_goes(
    world: SyncWorld,
) -> None:
    """A message Adele sent to Kim with herself in cc sits in her Sent Items and her Inbox,
    with one internetMessageId: one activity, deleted only when both copies are gone. (With
    m365sim's delta replays off: a replayed item would revive a wrongly deleted email.)"""
    kim(world)
    world.sim_config(delta_replay=False)
    world.configure(delete_policy="delete")
    spec = {
        "from": ADELE,
        "to": ["kim@fabrikam.com"],
        "cc": [ADELE],
        "subject": "Self cc",
        "internetMessageId": "<self-cc-1@contoso.com>",
    }
    sent = world.deliver(ADELE, folder="sentitems", **spec)
    received = world.deliver(ADELE, folder="inbox", **spec)
    adele = world.members[ADELE]
    assert world.sync(ADELE).outcome == "ok"
    assert copies(world) == {
        "Self cc": {
            (adele, "sentitems", sent["immutableId"]),
            (adele, "inbox", received["immutableId"]),
        }
    }

    delete_message(world, ADELE, sent)
    assert world.sync(ADELE).outcome == "ok"
    assert copies(world) == {"Self cc": {(adele, "inbox", received["immutableId"])}}

    delete_message(world, ADELE, received)
    result = world.sync(ADELE)
    assert result.outcome == "ok"
    assert copies(world) == {}
    with world.crm() as crm:
        assert crm.count_activities(ActivityKind.EMAIL, include_deleted=True) == 1


def test_an_email_in_two_mailboxes_is_deleted_when_the_last_mailbox_deletes_it(
    world: SyncWorld,
) -> None:
    kim(world)
    world.sim_config(delta_replay=False)
    world.configure(delete_policy="delete")
    spec = {
        "from": "kim@fabrikam.com",
        "to": [ADELE, ALEX],
        "subject": "Shared",
        "internetMessageId": "<shared-1@fabrikam.com>",
    }
    adeles, alexs = world.deliver(ADELE, **spec), world.deliver(ALEX, **spec)
    assert world.sync(ADELE).outcome == "ok"
    assert world.sync(ALEX).outcome == "ok"

    delete_message(world, ADELE, adeles)
    assert world.sync(ADELE).outcome == "ok"
    assert copies(world) == {"Shared": {(world.members[ALEX], "inbox", alexs["immutableId"])}}

    delete_message(world, ALEX, alexs)
    assert world.sync(ALEX).outcome == "ok"
    assert copies(world) == {}


@pytest.mark.parametrize(
    ("source", "destination"), [("inbox", "sentitems"), ("sentitems", "inbox")]
)
def test_a_move_between_synced_folders_is_neither_a_deletion_nor_a_new_email(
    world: SyncWorld, source: str, destination: str
) -> None:
    """Whichever folder is read first in a pass, the moved email keeps its activity, never
    deleted on the way (its modification time would show it), now in the new folder."""
    kim(world)
    world.sim_config(delta_replay=False)
    world.configure(delete_policy="delete")
    message = world.deliver(ADELE, folder=source, **{"from": "kim@fabrikam.com", "subject": "Move"})
    assert world.sync(ADELE).outcome == "ok"
    with world.crm() as crm:
        (before,) = crm.activities(ActivityKind.EMAIL)
        before_id, before_modified = before.id, before.modified_at

    world.control.post(
        f"/_sim/mailboxes/{ADELE}/messages/{message['immutableId']}/move",
        json={"destination": destination},
    ).raise_for_status()
    result = world.sync(ADELE)

    assert result.outcome == "ok"
    assert copies(world) == {"Move": {(world.members[ADELE], destination, message["immutableId"])}}
    with world.crm() as crm:
        (after,) = crm.activities(ActivityKind.EMAIL, include_deleted=True)
    assert (after.id, after.deleted_at, after.modified_at) == (before_id, None, before_modified)


def test_a_huge_subject_or_name_is_stored_shortened_and_says_so(world: SyncWorld) -> None:
    kim(world)
    world.deliver(
        ADELE,
        **{
            "from": {"name": "K" * 50_000, "address": "kim@fabrikam.com"},
            "subject": "Quarterly numbers " + "x" * 1_000_000,
        },
    )

    result = world.sync(ADELE)

    assert result.outcome == "ok", result.error
    with world.crm() as crm:
        (email,) = crm.activities(ActivityKind.EMAIL)
    assert len(email.subject) == SUBJECT_MAX_CHARS
    assert email.subject.startswith("Quarterly numbers xxx")
    assert email.subject.endswith(" [truncated]")
    assert [len(p["name"]) for p in email.participants if p["role"] == "from"] == [NAME_MAX_CHARS]


def test_expired_cursor_means_a_resync_not_a_failure(world: SyncWorld) -> None:
    kim(world)
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Before"})
    assert world.sync(ADELE).outcome == "ok"
    world.sim_config(delta_token_lifetime_seconds=60)
    world.control.post("/_sim/clock", json={"advanceSeconds": 120}).raise_for_status()
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "After"})

    result = world.sync(ADELE)

    assert result.outcome == "ok", result.error
    assert subjects(world) == ["After", "Before"]


def test_surprising_payloads_never_stop_the_mailbox(world: SyncWorld) -> None:
    world.configure(log_unknown=True)
    world.add_contact("jörg@bücher.de")
    world.deliver(ADELE, **{"to": [ADELE, "kim@fabrikam.com"], "subject": "No sender"})
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": ""})
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Huge", "body": "x" * 3_000_000})
    world.deliver(ADELE, **{"from": "Jörg@xn--bcher-kva.de", "subject": "IDN ✓ 日本語"})
    world.deliver(
        ADELE,
        **{
            "from": "kim@fabrikam.com",
            "subject": "Bad id",
            "internetMessageId": "<" + "x" * 600 + "@a>",
        },
    )
    world.deliver(ADELE, **{"from": "not-an-address", "subject": "Garbage sender"})

    result = world.sync(ADELE)

    assert result.outcome == "ok", result.error
    assert subjects(world) == ["", "Huge", "IDN ✓ 日本語", "No sender"]
    with world.crm() as crm:
        huge = next(a for a in crm.activities(ActivityKind.EMAIL) if a.subject == "Huge")
        assert huge.body is not None and len(huge.body) < 300_000
        idn = next(a for a in crm.activities(ActivityKind.EMAIL) if a.subject.startswith("IDN"))
        assert crm.activity_people(idn.id)  # matched to the contact stored in Unicode form
    from m365sync.sync.repository import SyncRepository

    with world.database.session() as s:
        repo = SyncRepository(s)
        (unit,) = repo.units(world.organization_id)
        quarantined = repo.quarantined(unit.id)
    assert [q.reason for q in quarantined] == [
        "Unreadable message: internetMessageId longer than 400 characters"
    ]
    assert unit.counts["total_quarantined"] == 1


def test_a_unit_never_runs_twice_at_once(world: SyncWorld) -> None:
    from m365sync.sync.repository import SyncRepository

    with world.database.session() as s:
        repo = SyncRepository(s)
        member = repo.member(world.members[ADELE])
        assert member is not None
        unit = repo.ensure_unit(member, SyncFeature.EMAIL)
        assert repo.try_lease(unit.id, "other-worker", 60)

    assert world.sync(ADELE).outcome == "busy"
    assert not [r for r in world.requests() if r["path"].startswith("/v1.0")]
