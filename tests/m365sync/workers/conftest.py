"""Fixtures for the workers' tests: Salesforce as Contoso's CRM (``target``)."""

from __future__ import annotations

from support.salesforce_target_world import salesforce_target as target

__all__ = ["target"]
