"""Re-sealing every sealed column (``info={"sealed": True}``) under a new key, and telling
whether anything is sealed at all (a missing key file may be created only then).

Used by ``m365sync keys rotate`` (``rotate_secret_key``) and the connection runtime; works
on any model of any package that marks its ciphertext columns, as long as the table's
primary key is a single ``id`` column (the sealing context includes it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from m365sync.crypto import (
    KEY_FILE,
    NEXT_KEY_FILE,
    SecretBox,
    decode_key,
    generate_key,
    load_keys,
    seal_context,
    write_key_file,
)
from m365sync.db.base import Base
from m365sync.db.migrate import load_models
from m365sync.db.session import Database
from m365sync.errors import ValidationFailed
from m365sync.settings import Settings


def sealed_columns() -> list[tuple[str, str]]:
    load_models()
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.info.get("sealed"):
                found.append((table.name, column.name))
    return found


def reseal_all(session: Session, old: SecretBox, new: SecretBox) -> int:
    """Re-seal every sealed value from ``old`` to ``new``; returns how many were re-sealed."""
    count = 0
    for table_name, column_name in sealed_columns():
        table = Base.metadata.tables[table_name]
        column = table.c[column_name]
        rows = session.execute(select(table.c.id, column).where(column.is_not(None))).all()
        for row_id, sealed in rows:
            context = seal_context(table_name, column_name, row_id)
            plaintext = old.open(sealed, context)
            session.execute(
                update(table)
                .where(table.c.id == row_id)
                .values({column_name: new.seal(plaintext, context)})
            )
            count += 1
    return count


def anything_sealed(engine: Engine) -> bool:
    """Whether any sealed column holds a value (a database not migrated yet holds none)."""
    existing = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        for table_name, column_name in sealed_columns():
            if table_name not in existing:
                continue
            column = Base.metadata.tables[table_name].c[column_name]
            if connection.execute(select(literal(1)).where(column.is_not(None)).limit(1)).first():
                return True
    return False


@dataclass(frozen=True)
class KeyRotation:
    """How many secrets were re-sealed, and the key file now holding the new key (``None``
    when the key comes from ``M365SYNC_SECRET_KEY``: the operator sets it to the new key)."""

    resealed: int
    key_file: Path | None


def rotate_secret_key(
    database: Database,
    settings: Settings,
    new_key: str | None = None,
    *,
    new_key_source: str = "the new key",
) -> KeyRotation:
    """Re-seal every stored secret under a new key: ``new_key`` (base64 of 32 bytes, from
    ``new_key_source``) or, with a key file, a generated one.

    With a key file, the new key is written to ``secret.key.next`` first and replaces
    ``secret.key`` only after the re-sealed values are committed: a rotation stopped half
    way leaves both keys, which open everything (``load_keys`` reads both), and running it
    again finishes it with the same pending key. With ``M365SYNC_SECRET_KEY`` nothing is
    written to disk; the new key must come from ``M365SYNC_NEW_SECRET_KEY``.
    """
    old = SecretBox(load_keys(settings))
    if settings.secret_key:
        if not new_key:
            raise ValidationFailed(
                "The key comes from M365SYNC_SECRET_KEY, so the new key must too.",
                fix=(
                    "Run with M365SYNC_NEW_SECRET_KEY=<base64 of 32 bytes>, then set "
                    "M365SYNC_SECRET_KEY to it."
                ),
            )
        key = decode_key(new_key, source="M365SYNC_NEW_SECRET_KEY")
        with database.session() as session:
            count = reseal_all(session, old, SecretBox([key]))
        return KeyRotation(count, None)
    key_path = settings.data_dir / KEY_FILE
    next_path = settings.data_dir / NEXT_KEY_FILE
    if next_path.exists():
        key = decode_key(next_path.read_text(encoding="ascii"), source=str(next_path))
    else:
        key = decode_key(new_key, source=new_key_source) if new_key else generate_key()
        write_key_file(next_path, key)
    with database.session() as session:
        count = reseal_all(session, old, SecretBox([key, *load_keys(settings)]))
    os.replace(next_path, key_path)  # only once the re-sealed values are committed
    return KeyRotation(count, key_path)
