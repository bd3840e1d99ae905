"""The demo organization as ``m365sync serve`` seeds it, for tests that start from it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Database
from m365sync.demo import seed_demo_organization
from m365sync.settings import Settings

__all__ = ["seed_demo"]


def seed_demo(settings: Settings, database: Database) -> None:
    """Seed Contoso: members, passwords, the demo CRM and the service account. In a thread
    of its own: a browser test's playwright owns the calling thread's event loop."""

    async def seed() -> None:
        runtime = ConnectionRuntime.from_settings(settings, database)
        try:
            await seed_demo_organization(settings, database, runtime)
        finally:
            await runtime.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed()).result()
