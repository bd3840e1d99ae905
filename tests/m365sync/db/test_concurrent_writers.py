"""Several m365sync commands writing one SQLite file at once all succeed: each waits for
the others' writes instead of failing with "database is locked"."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CONTACTS_PER_FILE = 60
OVERLAP = 20  # each file updates the previous file's last rows: reads, then writes
FILES = 4


def m365sync(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from m365sync.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out + err


def test_concurrent_cli_writers_on_one_sqlite_file_all_succeed(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
    }
    env.pop("M365SYNC_DATABASE_URL", None)
    code, output = finish(m365sync(env, "orgs", "create", "Contoso"))
    assert code == 0, output
    files = []
    for n in range(FILES):
        path = tmp_path / f"contacts-{n}.csv"
        first = n * (CONTACTS_PER_FILE - OVERLAP)
        rows = "".join(
            f"buyer{i}@fabrikam.com,Buyer{i},From file {n},Fabrikam\n"
            for i in range(first, first + CONTACTS_PER_FILE)
        )
        path.write_text("email,first_name,last_name,company\n" + rows)
        files.append(path)

    writers = [m365sync(env, "crm", "import", str(path), "--org", "contoso") for path in files]
    writers += [
        m365sync(env, "members", "add", "-o", "contoso", f"member{i}@contoso.com") for i in range(2)
    ]
    results = [finish(writer) for writer in writers]

    for code, output in results:
        assert code == 0, output
        assert "locked" not in output and "busy" not in output
    with sqlite3.connect(tmp_path / "data" / "m365sync.db") as database:
        emails = [row[0] for row in database.execute("select email from crm_contacts")]
        members = {row[0] for row in database.execute("select email from members")}
    distinct = (FILES - 1) * (CONTACTS_PER_FILE - OVERLAP) + CONTACTS_PER_FILE
    assert sorted(emails) == sorted(f"buyer{i}@fabrikam.com" for i in range(distinct))
    assert members >= {"member0@contoso.com", "member1@contoso.com"}
