"""Multi-row inserts for the embedded store's hot path (the email path), compiled once.

A first sync logs tens of thousands of messages, so their inserts are prepared once per
dialect (SQLite or PostgreSQL), table and column list (``INSERT ... ON CONFLICT DO
NOTHING``, or ``DO UPDATE`` for an upsert) and executed with positional rows whose values
went through each column's bind processor once, column-wise, instead of SQLAlchemy's
per-row parameter processing.

The rows travel differently per database. SQLite takes multi-row ``VALUES`` statements.
PostgreSQL takes the rows as one JSON document, which the server turns back into rows of
the table's own types (``INSERT ... SELECT ... FROM json_populate_recordset(NULL::table,
%s::json)``): one short statement, however many rows, its one value written by orjson.
psycopg reads a statement's text for its placeholders on every execution unless the
statement is short (it remembers those of at most 4 KiB and 50 parameters), and a
thousand rows of ``VALUES`` are a hundred KiB of placeholders; a page's rows as typed
arrays cost as much again in psycopg's array quoting. Either took more CPU than all the
rest of a page's store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

__all__ = ["Refresh", "bulk_insert"]


@dataclass(frozen=True)
class Refresh:
    """What a prepared insert does with a row whose ``key`` exists already: take the new
    row's ``take`` columns and set the ``clear`` columns to NULL (an upsert). Without one,
    the existing row is left alone (``ON CONFLICT DO NOTHING``)."""

    key: tuple[str, ...]
    take: tuple[str, ...]
    clear: tuple[str, ...] = ()


@dataclass(frozen=True)
class _PreparedInsert:
    """Multi-row ``INSERT ... ON CONFLICT DO NOTHING`` (or ``DO UPDATE``, see ``Refresh``)
    for one dialect and column list.

    Rows go in as multi-row ``VALUES`` statements (SQLite) or one JSON document
    (PostgreSQL, ``names`` set: the column names its rows are keyed by), never an
    executemany: the database driver releases the GIL once per statement instead of once
    per row, which keeps the fetching side (same process) from stalling the writer."""

    table: str
    columns: str
    placeholder: str
    width: int
    rows_per_statement: int
    processors: tuple[Callable[[Any], Any] | None, ...]
    on_conflict: str
    names: tuple[str, ...] | None = None

    @classmethod
    def build(
        cls,
        table: Table,
        columns: tuple[str, ...],
        dialect: Dialect,
        refresh: Refresh | None = None,
    ) -> _PreparedInsert:
        preparer = dialect.identifier_preparer
        on_conflict = "ON CONFLICT DO NOTHING"
        if refresh is not None:
            sets = [f"{preparer.quote(c)} = excluded.{preparer.quote(c)}" for c in refresh.take]
            sets += [f"{preparer.quote(c)} = NULL" for c in refresh.clear]
            key = ", ".join(preparer.quote(c) for c in refresh.key)
            on_conflict = f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}"
        marker = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        if dialect.name == "sqlite" and dialect.dbapi is not None:
            budget = 32_000 if dialect.dbapi.sqlite_version_info >= (3, 32) else 999
        else:
            budget = 32_000
        document = dialect.name == "postgresql"
        return cls(
            table=preparer.format_table(table),
            columns=", ".join(preparer.quote(c) for c in columns),
            placeholder="(" + ", ".join([marker] * len(columns)) + ")",
            width=len(columns),
            rows_per_statement=max(1, budget // len(columns)),
            processors=tuple(
                # JSON columns stay Python values: the document holds them as JSON.
                None
                if document and isinstance(table.c[c].type, JSON)
                else _processor(table, c, dialect)
                for c in columns
            ),
            on_conflict=on_conflict,
            names=columns if document else None,
        )

    def sql(self, rows: int) -> str:
        # Table and column names come from the models, quoted by the dialect; every value
        # is a bound parameter.
        into = f"INSERT INTO {self.table} ({self.columns})"
        if self.names is not None:
            rows_of = f"json_populate_recordset(NULL::{self.table}, %s::json)"
            return f"{into} SELECT {self.columns} FROM {rows_of} {self.on_conflict}"  # noqa: S608
        values = ", ".join([self.placeholder] * rows)
        return f"{into} VALUES {values} {self.on_conflict}"

    def params(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Rows of Python values (in column order), converted as the DBAPI wants them:
        flattened row by row, or (``names``) one JSON document of the rows. Conversion is
        column-wise: a column holding one value in every row (the organization, the page's
        timestamp, the email constants) is converted once."""
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i, processor in enumerate(self.processors):
            if processor is None:
                continue
            column = columns[i]
            first = column[0]
            if column.count(first) == len(column):
                columns[i] = [None if first is None else processor(first)] * len(column)
            else:
                columns[i] = [None if value is None else processor(value) for value in column]
        if self.names is not None:
            names = self.names
            document = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
            return [orjson.dumps(document).decode()]
        return list(chain.from_iterable(zip(*columns, strict=True)))


def _processor(table: Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    kind = table.c[column].type
    if isinstance(kind, JSON):
        return _json_text  # JSON text (dataclasses as objects); both databases take it
    processor: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


_PREPARED: dict[tuple[str, str, tuple[str, ...], Refresh | None], _PreparedInsert] = {}


def bulk_insert(
    session: Session,
    model: type[Any],
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    refresh: Refresh | None = None,
) -> int:
    """``INSERT ... ON CONFLICT DO NOTHING`` (with ``refresh``: ``DO UPDATE``) of
    positional ``rows`` (values in ``columns`` order); returns how many rows were
    inserted (and updated, with ``refresh``; -1: unknown)."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    table: Table = model.__table__
    key = (dialect.name, table.name, columns, refresh)
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = _PreparedInsert.build(table, columns, dialect, refresh)
    inserted = 0
    step = len(rows) if prepared.names is not None else prepared.rows_per_statement
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        result = connection.exec_driver_sql(prepared.sql(len(chunk)), tuple(prepared.params(chunk)))
        if result.rowcount < 0:
            return -1
        inserted += result.rowcount
    return inserted
