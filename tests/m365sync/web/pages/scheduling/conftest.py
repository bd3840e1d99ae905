"""Fixtures for the scheduling pages (web/pages/scheduling.py): the scheduling world
(``support.scheduling_world``), whose ``client`` is its own app's, not the dashboard's."""

from __future__ import annotations

from support.scheduling_world import client, world

__all__ = ["client", "world"]
