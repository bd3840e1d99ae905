"""Signed, unguessable links for the invitee: view, cancel and reschedule one booking.

A token is ``itsdangerous``'s URL-safe, HMAC-SHA256-signed serialisation of
``{booking id, action, booking version, expiry}``. Promises:

- Nobody can make one without the key (a changed byte fails the signature), and a token
  for one action never works for another (the action is signed in).
- It expires: a cancel or reschedule link stops working once the meeting has started; a
  view link a week after the meeting.
- Rescheduling bumps the booking's ``version``: links issued for the earlier time stop
  working (the invitee uses the newest confirmation).

The signing key is derived (HKDF-SHA256) from the installation's secret key, so no extra
secret needs managing, and this key can never decrypt anything. After a key rotation,
links signed with the previous keys keep working as long as those keys are configured.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeSerializer

from m365sync.crypto import load_keys
from m365sync.errors import Forbidden
from m365sync.settings import Settings

__all__ = ["BookingAction", "BookingLink", "BookingTokens", "InvalidBookingLink"]

VIEW_GRACE = timedelta(days=7)


class BookingAction(enum.StrEnum):
    VIEW = "view"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"


class InvalidBookingLink(Forbidden):
    """The link was altered, is for another action, has expired or was replaced."""


@dataclass(frozen=True)
class BookingLink:
    booking_id: str
    action: BookingAction
    version: int
    expires_at: datetime


def _derive(master_key: bytes) -> bytes:
    if len(master_key) < 16:
        raise ValueError("a master key must be at least 16 bytes")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"m365sync scheduling links v1"
    ).derive(master_key)


class BookingTokens:
    """``master_keys[0]`` signs; every key verifies (the installation's keys, newest first)."""

    def __init__(self, *master_keys: bytes) -> None:
        if not master_keys:
            raise ValueError("at least one master key is needed")
        # itsdangerous signs with the last key of the list and accepts any of them.
        derived = [_derive(k) for k in reversed(master_keys)]
        self._serializer = URLSafeSerializer(derived, salt="m365sync.scheduling.booking")

    @classmethod
    def from_settings(cls, settings: Settings) -> BookingTokens:
        return cls(*load_keys(settings))

    def issue(
        self,
        booking_id: str,
        action: BookingAction,
        *,
        version: int,
        meeting_start: datetime,
        meeting_end: datetime,
    ) -> str:
        expires = meeting_end + VIEW_GRACE if action is BookingAction.VIEW else meeting_start
        payload = {"b": booking_id, "a": action.value, "v": version, "e": int(expires.timestamp())}
        token: str = self._serializer.dumps(payload)
        return token

    def read(
        self, token: str, action: BookingAction, *, now: datetime | None = None
    ) -> BookingLink:
        """The link's content, or ``InvalidBookingLink`` naming what is wrong and what to do.
        The caller still checks ``version`` against the booking."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature as exc:
            raise InvalidBookingLink(
                "This booking link is not valid.",
                fix="Open the link from your confirmation email exactly as it was sent.",
            ) from exc
        if not isinstance(payload, dict) or payload.get("a") != action.value:
            raise InvalidBookingLink(
                "This booking link is not valid for this page.",
                fix="Open the link from your confirmation email exactly as it was sent.",
            )
        expires_at = datetime.fromtimestamp(int(payload.get("e", 0)), UTC)
        if (now or datetime.now(UTC)) >= expires_at:
            raise InvalidBookingLink(
                "This booking link has expired: the meeting has already started or passed.",
                fix="Contact the person you booked with to arrange a change.",
            )
        return BookingLink(
            booking_id=str(payload.get("b")),
            action=action,
            version=int(payload.get("v", 0)),
            expires_at=expires_at,
        )
