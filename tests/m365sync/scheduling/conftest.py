"""Fixtures for the scheduling tests: the scheduling world (``support.scheduling_world``)."""

from __future__ import annotations

from support.scheduling_world import client, world

__all__ = ["client", "world"]
