"""Calendar Scheduling: booking links from a rep's real availability.

Meeting types and team links (``models``), the slot engine (``availability``, pure),
booking through Microsoft Graph and into the CRM (``service``), signed invitee links
(``tokens``), and the public booking pages plus the rep's and admin's pages
(``endpoints``; mount them with ``install_scheduling(app, calendars=..., tokens=...)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["install_scheduling"]


def install_scheduling(app: FastAPI, **wiring: Any) -> None:
    """See ``m365sync.scheduling.endpoints.install_scheduling``."""
    from m365sync.scheduling.endpoints import install_scheduling as install

    install(app, **wiring)
