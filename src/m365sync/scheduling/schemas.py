"""What a meeting type form and a booking form accept (validated before any service runs)."""

from __future__ import annotations

import re
from datetime import date, time

from pydantic import BaseModel, Field, field_validator, model_validator

from m365sync.scheduling.models import AvailabilitySource, MeetingKind

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class WindowInput(BaseModel):
    weekday: int = Field(ge=0, le=6)
    start: time
    end: time  # 00:00 = midnight at the end of the day

    @model_validator(mode="after")
    def _ordered(self) -> WindowInput:
        if self.end != time(0) and self.end <= self.start:
            raise ValueError(
                f"The window {self.start:%H:%M}-{self.end:%H:%M} ends before it starts: make "
                "it end later (00:00 for midnight)."
            )
        return self


class OverrideInput(BaseModel):
    day: date
    start: time | None = None  # both None: not available that day
    end: time | None = None


class QuestionInput(BaseModel):
    label: str = Field(min_length=1, max_length=300)
    required: bool = False
    multiline: bool = False


class MeetingTypeInput(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str
    description: str = ""
    kind: MeetingKind = MeetingKind.ONE_ON_ONE
    host_member_ids: list[str] = Field(min_length=1)
    duration_minutes: int = Field(default=30, ge=5, le=720)
    slot_interval_minutes: int | None = Field(default=None, ge=5, le=720)
    location: str = Field(default="", max_length=300)
    online_meeting: bool = True
    book_room: bool = False
    availability_source: AvailabilitySource = AvailabilitySource.OUTLOOK
    windows: list[WindowInput] = Field(default_factory=list)
    overrides: list[OverrideInput] = Field(default_factory=list)
    buffer_before_minutes: int = Field(default=0, ge=0, le=240)
    buffer_after_minutes: int = Field(default=0, ge=0, le=240)
    minimum_notice_minutes: int = Field(default=240, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(default=60, ge=1, le=365)
    daily_limit: int | None = Field(default=None, ge=1, le=50)
    blocking_statuses: list[str] = Field(default_factory=lambda: ["busy", "tentative", "oof"])
    questions: list[QuestionInput] = Field(default_factory=list)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                "Use only lower-case letters, digits and hyphens, starting and ending with a "
                "letter or digit (e.g. intro-call)."
            )
        return value

    @field_validator("duration_minutes", "slot_interval_minutes")
    @classmethod
    def _five_minute_steps(cls, value: int | None) -> int | None:
        if value is not None and value % 5:
            raise ValueError("Use a multiple of 5 minutes.")
        return value

    @field_validator("blocking_statuses")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        allowed = ("busy", "tentative", "oof", "workingElsewhere", "free")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(
                f"Unknown free/busy status: {', '.join(unknown)}. Use any of {', '.join(allowed)}."
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MeetingTypeInput:
        if self.kind is MeetingKind.ONE_ON_ONE and len(self.host_member_ids) != 1:
            raise ValueError("A one-on-one meeting type has exactly one host.")
        if self.kind is not MeetingKind.ONE_ON_ONE and len(self.host_member_ids) < 2:
            raise ValueError("A team link needs at least two hosts.")
        if self.availability_source is AvailabilitySource.CUSTOM and not self.windows:
            raise ValueError(
                "Add at least one weekly window, or use the hosts' Outlook working hours."
            )
        return self


class InviteeInput(BaseModel):
    """The booking form, as the public page posts it (validated by the service, so every
    problem comes back as a field message rather than a 422 page)."""

    name: str = ""
    email: str = ""
    time_zone: str = "UTC"
    answers: dict[str, str] = Field(default_factory=dict)  # question id → answer
