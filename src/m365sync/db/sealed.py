"""Re-sealing every sealed column (``info={"sealed": True}``) under a new key, and telling
whether anything is sealed at all (a missing key file may be created only then).

Used by ``m365sync keys rotate`` and the connection runtime; works on any model of any
package that marks its ciphertext columns, as long as the table's primary key is a single
``id`` column (the sealing context includes it).
"""

from __future__ import annotations

from sqlalchemy import inspect, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from m365sync.crypto import SecretBox, seal_context
from m365sync.db.base import Base
from m365sync.db.migrate import load_models


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
