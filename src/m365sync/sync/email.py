"""Email Sync: each configured folder's message delta into CRM email activities.

Promises (``docs/sync.md``):

- a page's activities and the folder's cursor commit in one transaction, so a crash
  repeats at most one page, and repeating a page changes nothing (upserts by
  ``internetMessageId``; each mailbox item linked by its immutable id);
- one email is one activity however many copies hold it (two folders of one mailbox,
  several mailboxes); an item that left a folder is set aside, and only at the end of the
  pass, every folder read, is it known to be gone rather than moved: then the "delete"
  policy deletes the email if no mailbox holds a copy any more;
- every participant of a page is matched with one batched lookup (people) and one
  (account domains);
- privacy rules decide what is logged before anything is written: drafts never,
  messages involving an excluded address or domain never, internal-only mail not unless
  the organization chose it, and by default only mail involving a known contact or lead;
- one bad item never stops the mailbox: it is quarantined with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncGenerator, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from m365sync.crm import open_crm
from m365sync.crm.models import NAME_MAX_CHARS, ActivityKind
from m365sync.crm.target import (
    AttachmentInfo,
    CrmTarget,
    EmailRecord,
    NewLead,
    Participant,
    PersonMatch,
    address_domain,
    normalize_address,
)
from m365sync.db.base import utcnow
from m365sync.metrics import record_mail_lag
from m365sync.microsoft import errors as ms
from m365sync.microsoft.dates import read_graph_datetime
from m365sync.microsoft.delta import read_ahead
from m365sync.microsoft.graph import Page
from m365sync.microsoft.mail import (
    FILTERED_DELTA_LIMIT,
    attachment_lists,
    count_received_since,
    message_delta,
)
from m365sync.sync.context import LeaseLost, RunContext
from m365sync.sync.repository import SyncRepository
from m365sync.sync.schemas import SyncRules

__all__ = ["ParsedMessage", "parse_message", "run_email_sync"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ParsedMessage:
    item_id: str
    external_id: str
    subject: str
    body: str | None
    occurred_at: datetime | None
    received_at: datetime | None
    from_address: str | None
    participants: list[Participant]
    is_draft: bool
    conversation_id: str | None = None
    has_attachments: bool = False
    attachments: list[AttachmentInfo] = field(default_factory=list)


def _domain_set(names: Sequence[str]) -> frozenset[str]:
    """Domain names as message addresses carry them (``@Partner.Example.`` and
    ``partner.example`` alike: lower case, IDNA)."""
    return frozenset(
        address_domain(normalize_address(f"x@{name.lstrip('@')}") or name) for name in names
    )


def _people(value: Any, role: str) -> list[Participant]:
    out: list[Participant] = []
    entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        email = entry.get("emailAddress")
        if not isinstance(email, dict):
            continue
        address = normalize_address(str(email.get("address") or ""))
        if address is None:
            continue
        out.append(Participant(address, str(email.get("name") or "")[:NAME_MAX_CHARS], role))
    return out


def parse_message(item: dict[str, Any], max_body_chars: int) -> ParsedMessage:
    """A Graph message as the engine needs it; raises ``ValueError`` when it can't be used."""
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("the item has no id")
    participants = _people(item.get("from"), "from")
    from_address = participants[0].address if participants else None
    participants += _people(item.get("toRecipients"), "to")
    participants += _people(item.get("ccRecipients"), "cc")
    participants += _people(item.get("bccRecipients"), "bcc")
    internet_id = item.get("internetMessageId")
    external_id = (
        internet_id.strip()
        if isinstance(internet_id, str) and internet_id.strip()
        else f"graph:{item_id}"
    )
    if len(external_id) > 400:
        raise ValueError("internetMessageId longer than 400 characters")
    body_value = item.get("body")
    body: str | None = None
    if isinstance(body_value, dict):
        content = body_value.get("content")
        if isinstance(content, str):
            body = (
                content
                if len(content) <= max_body_chars
                else content[:max_body_chars] + "\n[truncated]"
            )
            body = body.replace("\x00", "")
    subject = item.get("subject")
    received_at = read_graph_datetime(item.get("receivedDateTime"))
    conversation = item.get("conversationId")
    return ParsedMessage(
        item_id=item_id,
        external_id=external_id,
        subject=(subject if isinstance(subject, str) else "").replace("\x00", ""),
        body=body,
        occurred_at=received_at or read_graph_datetime(item.get("sentDateTime")),
        received_at=received_at,
        from_address=from_address,
        participants=participants,
        is_draft=bool(item.get("isDraft")),
        conversation_id=conversation[:255]
        if isinstance(conversation, str) and conversation
        else None,
        has_attachments=item.get("hasAttachments") is True,
    )


@dataclass(slots=True)
class PreparedPage:
    """A page after the work that needs no database: parsed, privacy-filtered, with the
    external addresses to look up. Built while the previous page is being stored."""

    page: Page
    candidates: list[tuple[ParsedMessage, set[str], set[str]]]
    external: set[str]
    removed: list[str]
    rejected: list[tuple[str, str, str]]  # (item id, reason, excerpt) to quarantine
    skipped: int


class PageWriter:
    """One folder's pages: ``prepare`` (pure Python, no database) then ``write`` (the
    page's records and its cursor in one transaction). Both run in threads."""

    def __init__(
        self,
        ctx: RunContext,
        rules: SyncRules,
        internal_domains: frozenset[str],
        folder: str,
        floor: datetime | None = None,
        *,
        full_round: bool = False,
        scope: datetime | None = None,
    ) -> None:
        self.ctx = ctx
        self.rules = rules
        self.internal_domains = internal_domains
        self.excluded_addresses = frozenset(
            a for a in map(normalize_address, rules.excluded_addresses) if a
        )
        self.excluded_domains = _domain_set(rules.excluded_domains)
        self.folder = folder
        self.floor = floor  # messages received before it are outside the backfill window
        # A round read from the start lists everything the folder holds (received since
        # ``scope``): with the "delete" policy, what it didn't list is gone (deleted while
        # a cursor had expired, say), and is removed with the round's last page.
        self.reconcile = full_round and rules.delete_policy == "delete"
        self.full_round = full_round
        self.scope = scope
        self.seen: set[str] = set()

    def prepare(self, page: Page) -> PreparedPage:
        unique: dict[str, dict[str, Any]] = {}
        rejected: list[tuple[str, str, str]] = []
        for item in page.items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                unique[item["id"]] = item
            else:
                excerpt = repr(item)[:500]
                digest = hashlib.sha256(excerpt.encode()).hexdigest()[:32]
                rejected.append((f"unknown:{digest}", "The item has no id.", excerpt))
        removed: list[str] = []
        parsed: list[ParsedMessage] = []
        max_body = self.ctx.settings.sync_max_body_chars
        for item_id, item in unique.items():
            if "@removed" in item:
                removed.append(item_id)
                continue
            if self.reconcile:
                self.seen.add(item_id)
            try:
                parsed.append(parse_message(item, max_body))
            except (ValueError, TypeError, OverflowError) as exc:
                rejected.append((item_id, f"Unreadable message: {exc}", repr(item)[:2000]))
        # Privacy first, with each message's addresses and domains worked out once.
        internal = self.internal_domains
        floor = self.floor
        candidates: list[tuple[ParsedMessage, set[str], set[str]]] = []
        for m in parsed:
            if floor is not None and (m.received_at or m.occurred_at or floor) < floor:
                continue
            addresses = {p.address for p in m.participants}
            domains = {a.rpartition("@")[2] for a in addresses}
            if self._may_log(m, addresses, domains):
                candidates.append((m, addresses, domains))
        external = {
            a
            for _, addresses, _ in candidates
            for a in addresses
            if address_domain(a) not in internal
        }
        return PreparedPage(
            page, candidates, external, removed, rejected, len(parsed) - len(candidates)
        )

    def write(self, prepared: PreparedPage) -> None:
        ctx = self.ctx
        page = prepared.page
        with ctx.database.session() as session:
            repo = SyncRepository(session)
            if not repo.renew_lease(ctx.unit_id, ctx.lease_owner, ctx.settings.sync_lease_seconds):
                raise LeaseLost("This mailbox is being synced by another worker.")
            crm = open_crm(session, ctx.organization_id)
            self._store(session, repo, crm, prepared)
            if self.full_round:  # the dashboard's first-sync progress, with the page
                repo.save_run_progress(
                    ctx.unit_id, ctx.progress.items + len(page.items), ctx.progress.expected
                )
            if self.reconcile and page.delta_link is not None:
                gone = (
                    crm.linked_item_ids(
                        ActivityKind.EMAIL, ctx.member_id, folder=self.folder, since=self.scope
                    )
                    - self.seen
                )
                if gone:
                    crm.set_aside_email_copies(ctx.member_id, gone, folder=self.folder)
            repo.save_cursor(
                ctx.unit_id,
                f"mail:{self.folder}",
                delta_link=page.delta_link,
                next_link=page.next_link,
                received_since=self.floor,
            )
        if not self.full_round:  # committed: how long new mail took to get here
            record_mail_lag(m.received_at for m, _, _ in prepared.candidates)

    def _store(
        self, session: Any, repo: SyncRepository, crm: CrmTarget, prepared: PreparedPage
    ) -> None:
        ctx, rules, progress = self.ctx, self.rules, self.ctx.progress
        for item_id, reason, excerpt in prepared.rejected:
            progress.quarantined += 1
            repo.quarantine(ctx.unit_id, item_id, reason, excerpt)
        progress.skipped += prepared.skipped
        candidates, external = prepared.candidates, prepared.external
        people = crm.find_people(external) if external else {}
        accounts = (
            crm.find_accounts_by_domain({address_domain(a) for a in external}) if external else {}
        )
        if rules.create_leads:
            unknown = {}
            for m, _, _ in candidates:
                sender = m.from_address
                if sender and sender in external and sender not in people:
                    name = next((p.name for p in m.participants if p.address == sender), "")
                    unknown[sender] = NewLead(sender, name)
            if unknown:
                people.update(crm.create_leads(list(unknown.values()), ctx.member_id))
        records: list[EmailRecord] = []
        headers_only = rules.headers_only
        for m, addresses, domains in candidates:
            matched = _unique_people([people[a] for a in addresses if a in people])
            if not matched and not rules.log_unknown:
                progress.skipped += 1
                continue
            account_ids = {p.account_id for p in matched if p.account_id}
            account_ids.update(accounts[d] for d in domains if d in accounts)
            records.append(
                EmailRecord(
                    external_id=m.external_id,
                    member_id=ctx.member_id,
                    graph_item_id=m.item_id,
                    folder=self.folder,
                    subject=m.subject,
                    body=None if headers_only else m.body,
                    body_type="text",
                    headers_only=headers_only,
                    occurred_at=m.occurred_at,
                    from_address=m.from_address,
                    participants=m.participants,
                    people=matched,
                    account_ids=sorted(account_ids),
                    conversation_id=m.conversation_id,
                    attachments=m.attachments,
                )
            )
        self._upsert(session, repo, crm, records)
        if prepared.removed:
            # Deleted or moved: ``_settle_copies`` decides once every folder has been read.
            crm.set_aside_email_copies(ctx.member_id, prepared.removed, folder=self.folder)

    def _upsert(
        self, session: Any, repo: SyncRepository, crm: CrmTarget, records: list[EmailRecord]
    ) -> None:
        """All at once; if the database refuses the batch, item by item so only the
        offending items are quarantined."""
        if not records:
            return
        try:
            with session.begin_nested():
                result = crm.upsert_emails(records)
            self.ctx.progress.logged += result.created
            return
        except (IntegrityError, DBAPIError, ValueError):
            pass
        for record in records:
            try:
                with session.begin_nested():
                    result = crm.upsert_emails([record])
                self.ctx.progress.logged += result.created
            except (IntegrityError, DBAPIError, ValueError) as exc:
                self.ctx.progress.quarantined += 1
                repo.quarantine(
                    self.ctx.unit_id,
                    record.graph_item_id,
                    f"The CRM refused it: {exc.__class__.__name__}: {exc}"[:1000],
                    record.subject[:500],
                )

    def _may_log(self, message: ParsedMessage, addresses: set[str], domains: set[str]) -> bool:
        if message.is_draft or not addresses:
            return False
        if not addresses.isdisjoint(self.excluded_addresses) or not domains.isdisjoint(
            self.excluded_domains
        ):
            return False
        internal_only = domains <= self.internal_domains
        return not internal_only or self.rules.log_internal


def _unique_people(found: list[PersonMatch]) -> list[PersonMatch]:
    """``found`` without repeats (a person can be on a message under two roles)."""
    if len(found) < 2:
        return found
    return list({person.id: person for person in found}.values())


FolderCursors = dict[str, tuple[str | None, datetime | None]]


def load_rules(ctx: RunContext) -> tuple[SyncRules, frozenset[str], FolderCursors]:
    """The rules, the organization's own domains (mail among them only is internal), and
    per folder key the link to resume from (a round's next link, else the deltaLink) and
    the local receivedDateTime floor that folder's rounds apply."""
    with ctx.database.session() as session:
        repo = SyncRepository(session)
        rules = SyncRules.from_settings(repo.settings_for(ctx.organization_id))
        internal = _domain_set(repo.org_domains(ctx.organization_id))
        if ctx.full:
            repo.clear_cursors(ctx.unit_id)
        cursors = {
            c.key: (c.next_link or c.delta_link, c.window_start) for c in repo.cursors(ctx.unit_id)
        }
    return rules, internal, cursors


async def run_email_sync(ctx: RunContext) -> None:
    """One pass over every configured folder (incremental once each has a cursor), then
    the copies that left a folder and did not turn up in another are settled.

    Over Graph the folders' rounds run side by side: every folder's pages are fetched at
    the same time as the others', and stored one page at a time (``writes``), so a pass
    that waits on Microsoft's answers takes about as long as its busiest folder rather
    than the sum of them. Over EWS the folders are read one after the other."""
    rules, internal, cursors = await asyncio.to_thread(load_rules, ctx)
    if ctx.access.exchange is None:
        first_rounds = [
            f for f in rules.mail_folders if cursors.get(f"mail:{f}", (None, None))[0] is None
        ]
        windows = await _count_windows(ctx, rules, first_rounds)
        writes = asyncio.Lock()

        async def sync_folder(folder: str) -> None:
            cursor, floor = cursors.get(f"mail:{folder}", (None, None))
            try:
                await _sync_folder(
                    ctx, rules, internal, folder, cursor, floor, windows.get(folder), writes
                )
            except ms.SyncStateExpired:
                # Graph forgot the delta token: resync the folder from scratch (upserts make
                # the repeat harmless), don't fail.
                await asyncio.to_thread(_forget_cursor, ctx, folder)
                await _sync_folder(ctx, rules, internal, folder, None, None, None, writes)

        await _together(sync_folder(folder) for folder in rules.mail_folders)
    else:
        for folder in rules.mail_folders:
            cursor, floor = cursors.get(f"mail:{folder}", (None, None))
            try:
                await _sync_exchange_folder(ctx, rules, internal, folder, cursor, floor)
            except ms.SyncStateExpired:  # EWS forgot the SyncState: as over Graph
                await asyncio.to_thread(_forget_cursor, ctx, folder)
                await _sync_exchange_folder(ctx, rules, internal, folder, None, None)
    await asyncio.to_thread(_settle_copies, ctx, rules)


async def _together(runs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``runs`` side by side. A failure stops the others (each finishes the store it
    is in, as a cancelled round does), then the error of the first run that failed, in
    the order given, is raised as if the runs had gone one after the other."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error


def _settle_copies(ctx: RunContext, rules: SyncRules) -> None:
    """The end of a pass: items set aside (reported removed from a folder, or missing from
    a full round) that no synced folder listed since are gone from the mailbox. A pass that
    fails before this point leaves them set aside for the next one, so a crash between the
    two halves of a move never deletes the email."""
    with ctx.database.session() as session:
        repo = SyncRepository(session)
        # Written first: on SQLite this transaction is the writer from its first statement.
        if not repo.renew_lease(ctx.unit_id, ctx.lease_owner, ctx.settings.sync_lease_seconds):
            raise LeaseLost("This mailbox is being synced by another worker.")
        crm = open_crm(session, ctx.organization_id)
        ctx.progress.removed += crm.settle_email_copies(
            ctx.member_id, delete=rules.delete_policy == "delete"
        )


def _forget_cursor(ctx: RunContext, folder: str) -> None:
    with ctx.database.session() as session:
        SyncRepository(session).save_cursor(
            ctx.unit_id, f"mail:{folder}", delta_link=None, next_link=None, received_since=None
        )


@dataclass(frozen=True, slots=True)
class BackfillWindow:
    """A first round's backfill window: messages received since ``since``, ``messages``
    of them by Graph's count (None: Graph would not count them)."""

    since: datetime
    messages: int | None


async def _count_windows(
    ctx: RunContext, rules: SyncRules, folders: Sequence[str]
) -> dict[str, BackfillWindow]:
    """The backfill window of each of ``folders`` (read from the start), all counted at
    once before any folder's pages: one round trip for the folders together rather than
    one per folder between their rounds, and the dashboard's "of N" covers every folder
    from the first page."""
    if rules.backfill_days <= 0:
        return {}
    since = utcnow() - timedelta(days=rules.backfill_days)
    counts = await asyncio.gather(*(_count_window(ctx, folder, since) for folder in folders))
    ctx.progress.expected += sum(n or 0 for n in counts)
    return {f: BackfillWindow(since, n) for f, n in zip(folders, counts, strict=True)}


async def _sync_folder(
    ctx: RunContext,
    rules: SyncRules,
    internal: frozenset[str],
    folder: str,
    cursor: str | None,
    floor: datetime | None,
    window: BackfillWindow | None,
    writes: asyncio.Lock | None = None,
) -> None:
    """One delta round of ``folder``: from ``cursor``, or a first round over the backfill
    ``window`` (counted here when the pass did not count it up front); its stores hold
    ``writes``.

    A first round asks Graph for the window with ``$filter=receivedDateTime ge ...``, which
    Graph cuts off at 5,000 messages. So it first asks how many messages the window holds
    (one small ``$count`` request). At the limit or over, the folder is read with an
    unfiltered round, the window applied on our side (its deltaLink is the cursor, and the
    window is kept with it for the rounds that follow). Under it, the filtered round is
    read, and its pages are held back (at most 5,000 messages) until it ends, in case mail
    arriving meanwhile (or a count Graph did not give) takes the window to the limit after
    all: then the held pages are dropped and the folder is read unfiltered as above."""
    if cursor is not None or rules.backfill_days <= 0:
        round_pages = _round(ctx, rules, folder, cursor, None)
        await _store_round(
            ctx, rules, internal, folder, round_pages, floor, full=cursor is None, writes=writes
        )
        return
    if window is None:
        window = (await _count_windows(ctx, rules, [folder]))[folder]
    since = window.since
    if window.messages is None or window.messages < FILTERED_DELTA_LIMIT:
        held = await _filtered_round(ctx, rules, folder, since)
        if held is not None:
            held_pages = _replay(held)
            await _store_round(
                ctx,
                rules,
                internal,
                folder,
                held_pages,
                None,
                full=True,
                scope=since,
                writes=writes,
            )
            return
    log.info(
        "backfill window of %s/%s holds %s+ messages: reading the folder unfiltered",
        ctx.member_email,
        folder,
        FILTERED_DELTA_LIMIT,
    )
    round_pages = _round(ctx, rules, folder, None, None)
    await _store_round(
        ctx, rules, internal, folder, round_pages, since, full=True, scope=since, writes=writes
    )


async def _sync_exchange_folder(
    ctx: RunContext,
    rules: SyncRules,
    internal: frozenset[str],
    folder: str,
    cursor: str | None,
    floor: datetime | None,
) -> None:
    """One round of ``folder`` over EWS (``SyncFolderItems``), from the stored SyncState or
    from the start. EWS can't filter a sync by date: a first round lists the whole folder
    and only what arrived in the backfill window is fetched and stored; the window is kept
    with the cursor for the rounds that follow."""
    scope = None
    if cursor is None and rules.backfill_days > 0:
        floor = scope = utcnow() - timedelta(days=rules.backfill_days)
    pages = read_ahead(_exchange_round(ctx, rules, folder, cursor, floor))
    await _store_round(ctx, rules, internal, folder, pages, floor, full=cursor is None, scope=scope)


async def _exchange_round(
    ctx: RunContext, rules: SyncRules, folder: str, cursor: str | None, since: datetime | None
) -> AsyncGenerator[Page, None]:
    """The round's pages as Graph-shaped ``Page``s: the SyncState ending a page is its cursor
    (``next_link`` while the round goes on, ``delta_link`` on its last page)."""
    mailbox = ctx.access.exchange
    assert mailbox is not None
    state = cursor
    while True:
        page = await asyncio.to_thread(
            mailbox.message_changes,
            folder,
            state,
            page_size=ctx.settings.sync_page_size,
            since=since,
            headers_only=rules.headers_only,
        )
        ctx.progress.requests += page.requests
        yield Page(
            page.items,
            next_link=None if page.last else page.sync_state,
            delta_link=page.sync_state if page.last else None,
        )
        if page.last:
            return
        state = page.sync_state


async def _count_window(ctx: RunContext, folder: str, since: datetime) -> int | None:
    """The messages received in the window, or None when Graph would not count them."""
    try:
        async with ctx.budget:
            return await count_received_since(ctx.access.graph, ctx.access.user_path, folder, since)
    except ms.UnexpectedResponse as exc:
        log.info("no message count for %s/%s: %s", ctx.member_email, folder, exc)
        return None


async def _filtered_round(
    ctx: RunContext, rules: SyncRules, folder: str, since: datetime
) -> list[Page] | None:
    """The filtered round's pages, or None if it reached Graph's 5,000-message limit."""
    held: list[Page] = []
    seen: set[Any] = set()
    pages = _round(ctx, rules, folder, None, since)
    try:
        async for page in pages:
            held.append(page)
            seen.update(
                item.get("id")
                for item in page.items
                if isinstance(item, dict) and "@removed" not in item
            )
            if len(seen) >= FILTERED_DELTA_LIMIT:
                return None
    finally:
        await pages.aclose()
    return held


def _round(
    ctx: RunContext, rules: SyncRules, folder: str, cursor: str | None, since: datetime | None
) -> AsyncGenerator[Page, None]:
    pages = message_delta(
        ctx.access.graph,
        ctx.access.user_path,
        folder,
        cursor=cursor,
        since=since,
        headers_only=rules.headers_only,
        page_size=ctx.settings.sync_page_size,
    )
    return read_ahead(ctx.budget.pages(pages))


def _attachment_info(raw: dict[str, Any]) -> AttachmentInfo | None:
    """An attachment as logged: name, type and size of one that is not inline (inline
    images of a signature are part of the body, not attachments a person sent)."""
    if raw.get("isInline") is True:
        return None
    size = raw.get("size")
    return AttachmentInfo(
        name=str(raw.get("name") or "")[:255],
        content_type=str(raw.get("contentType") or "")[:255],
        size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
    )


async def _read_attachments(ctx: RunContext, prepared: PreparedPage) -> None:
    """The attachment names, types and sizes of the page's messages that have any (one
    ``$batch`` per 20 messages; their content is never read)."""
    wanted = [m for m, _, _ in prepared.candidates if m.has_attachments]
    if not wanted:
        return
    async with ctx.budget:
        lists = await attachment_lists(
            ctx.access.graph, ctx.access.user_path, [m.item_id for m in wanted]
        )
    for message, found in zip(wanted, lists, strict=True):
        infos = (_attachment_info(a) for a in found or [])
        message.attachments = [info for info in infos if info is not None]


def _stored(ctx: RunContext, items: int, done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is None:
        ctx.progress.page_done(items)


async def _write(writer: PageWriter, prepared: PreparedPage, writes: asyncio.Lock | None) -> None:
    async with writes if writes is not None else contextlib.nullcontext():
        await asyncio.to_thread(writer.write, prepared)


async def _replay(pages: list[Page]) -> AsyncGenerator[Page, None]:
    for page in pages:
        yield page


async def _store_round(
    ctx: RunContext,
    rules: SyncRules,
    internal: frozenset[str],
    folder: str,
    pages: AsyncGenerator[Page, None],
    floor: datetime | None,
    *,
    full: bool = False,
    scope: datetime | None = None,
    writes: asyncio.Lock | None = None,
) -> None:
    """Store a round's pages as a three-stage pipeline: page N+1 is fetched and prepared
    while page N is stored. Stores run one at a time, in page order, so the cursor
    committed with a page never passes a page that isn't stored; at most three pages are
    in memory. With ``writes``, a store also waits for the other rounds' (one writer per
    pass)."""
    writer = PageWriter(ctx, rules, internal, folder, floor, full_round=full, scope=scope)
    storing: asyncio.Future[None] | None = None
    try:
        async for page in pages:
            prepared = await asyncio.to_thread(writer.prepare, page)
            await _read_attachments(ctx, prepared)
            if storing is not None:
                await storing
            storing = asyncio.ensure_future(_write(writer, prepared, writes))
            storing.add_done_callback(functools.partial(_stored, ctx, len(page.items)))
        if storing is not None:
            await storing
    finally:
        await pages.aclose()
        if storing is not None and not storing.done():
            # A store in flight finishes (commits or rolls back) before the error goes on.
            with contextlib.suppress(Exception):
                await asyncio.shield(storing)
