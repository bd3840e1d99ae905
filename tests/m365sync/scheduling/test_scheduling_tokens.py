"""Signed invitee links: unforgeable, action-bound, expiring, and surviving key rotation."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from m365sync.scheduling.tokens import BookingAction, BookingTokens, InvalidBookingLink

START = datetime(2027, 1, 11, 17, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)
BEFORE = START - timedelta(days=2)


def issue(
    tokens: BookingTokens, action: BookingAction = BookingAction.CANCEL, version: int = 1
) -> str:
    return tokens.issue("booking-1", action, version=version, meeting_start=START, meeting_end=END)


def test_a_link_reads_back_until_the_meeting_starts() -> None:
    tokens = BookingTokens(os.urandom(32))
    link = tokens.read(issue(tokens), BookingAction.CANCEL, now=BEFORE)
    assert (link.booking_id, link.version, link.expires_at) == ("booking-1", 1, START)
    with pytest.raises(InvalidBookingLink, match="expired"):
        tokens.read(issue(tokens), BookingAction.CANCEL, now=START)


def test_view_links_last_a_week_after_the_meeting() -> None:
    tokens = BookingTokens(os.urandom(32))
    token = issue(tokens, BookingAction.VIEW)
    assert tokens.read(token, BookingAction.VIEW, now=END + timedelta(days=6))
    with pytest.raises(InvalidBookingLink):
        tokens.read(token, BookingAction.VIEW, now=END + timedelta(days=7))


def test_every_altered_character_is_refused() -> None:
    tokens = BookingTokens(os.urandom(32))
    token = issue(tokens)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, char in enumerate(token):
        # Flip the top bit of the character's 6 bits (the low bits of a final base64
        # character can be padding, so changing only those would prove nothing).
        replacement = alphabet[alphabet.index(char) ^ 0b100000] if char in alphabet else "A"
        forged = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(InvalidBookingLink):
            tokens.read(forged, BookingAction.CANCEL, now=BEFORE)


def test_a_link_is_bound_to_its_action_and_key() -> None:
    tokens = BookingTokens(os.urandom(32))
    with pytest.raises(InvalidBookingLink, match="not valid for this page"):
        tokens.read(issue(tokens, BookingAction.VIEW), BookingAction.CANCEL, now=BEFORE)
    with pytest.raises(InvalidBookingLink, match="not valid"):
        BookingTokens(os.urandom(32)).read(issue(tokens), BookingAction.CANCEL, now=BEFORE)


def test_links_survive_a_key_rotation() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before_rotation = issue(BookingTokens(old))
    rotated = BookingTokens(new, old)
    assert rotated.read(before_rotation, BookingAction.CANCEL, now=BEFORE).booking_id == "booking-1"
    after = issue(rotated)
    assert BookingTokens(new).read(after, BookingAction.CANCEL, now=BEFORE)
    with pytest.raises(InvalidBookingLink):
        BookingTokens(old).read(after, BookingAction.CANCEL, now=BEFORE)


def test_tokens_are_unguessable() -> None:
    tokens = BookingTokens(os.urandom(32))
    a, b = issue(tokens), issue(BookingTokens(os.urandom(32)))
    assert a != b and len(a) > 60
