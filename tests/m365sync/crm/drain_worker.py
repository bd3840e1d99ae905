"""A Salesforce writer process for the SIGKILL test: ``python drain_worker.py <config.json>``.

It drains the organization's due activities into Salesforce once, as a worker does, and
prints the ``DrainResult`` as JSON. ``clock_offset_minutes`` moves its clock forward: each
restarted writer runs after the lease of the one killed before it has run out.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from m365sync.crm.salesforce_writer import drain_salesforce
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.settings import Settings


def main(config: dict[str, object]) -> None:
    settings = Settings(_env_file=None, **config["settings"])  # type: ignore[arg-type,call-arg]
    database = Database.from_url(str(config["database_url"]))
    offset = timedelta(minutes=float(config["clock_offset_minutes"]))  # type: ignore[arg-type]

    def now() -> datetime:
        return utcnow() + offset

    try:
        result = drain_salesforce(
            database,
            str(config["organization_id"]),
            settings=settings,
            box=SecretBox.from_settings(settings),
            round_size=int(config["round_size"]),  # type: ignore[call-overload]
            max_rounds=1_000,
            now=now,
        )
    finally:
        database.dispose()
    print(
        json.dumps({"status": str(result.status), "synced": result.synced, "msg": result.message}),
        flush=True,
    )


if __name__ == "__main__":
    main(json.loads(Path(sys.argv[1]).read_text()))
