"""A sync process for the SIGKILL test: ``python kill_worker.py <config.json>``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.settings import Settings
from m365sync.sync.features import SyncFeature
from m365sync.sync.service import sync_member


async def main(config: dict[str, object]) -> None:
    settings = Settings(**config["settings"])  # type: ignore[arg-type]
    database = Database.from_url(str(config["database_url"]))
    runtime = ConnectionRuntime.from_settings(settings, database)
    engine = Settings(**config["engine"])  # type: ignore[arg-type]
    try:
        result = await sync_member(
            database, runtime, str(config["member_id"]), SyncFeature.EMAIL, settings=engine
        )
    finally:
        await runtime.aclose()
    print(
        json.dumps(
            {"outcome": result.outcome, "items": result.progress.items, "error": result.error}
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
