"""Calendar Scheduling: booking links from a rep's real availability.

Meeting types and team links (``models``), the slot engine (``availability``, pure),
booking through Microsoft Graph and into the CRM (``service``), signed invitee links
(``tokens``), recovery of bookings a stopped process left pending (``tasks``), and the
public booking pages plus the rep's and admin's pages (``endpoints``). ``create_app``
mounts them with ``install_scheduling(app)``, once; its wiring is ``app.state.scheduling``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from m365sync.scheduling.endpoints import SchedulingWiring

__all__ = ["install_scheduling"]


def install_scheduling(app: FastAPI, **wiring: Any) -> SchedulingWiring:
    """See ``m365sync.scheduling.endpoints.install_scheduling``."""
    from m365sync.scheduling.endpoints import install_scheduling as install

    return install(app, **wiring)
