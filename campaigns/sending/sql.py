"""Small helpers for the send path's bulk statements (one statement per batch, not per row)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")
ROWS_PER_STATEMENT = 1000


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def values(rows: Sequence[Sequence[Any]], casts: Sequence[str]) -> tuple[str, list[Any]]:
    """`VALUES (%s::bigint, %s::text), ...` for `rows` and the flat parameter list. The casts
    type the first row, which types the whole list in PostgreSQL."""
    first = "(" + ", ".join(f"%s::{c}" for c in casts) + ")"
    rest = "(" + ", ".join(["%s"] * len(casts)) + ")"
    sql = "VALUES " + ", ".join([first] + [rest] * (len(rows) - 1))
    params: list[Any] = [value for row in rows for value in row]
    return sql, params


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def update_from_values(
    table: str, rows: Sequence[Sequence[Any]], columns: Sequence[tuple[str, str]], set_sql: str
) -> int:
    """`UPDATE table AS t SET <set_sql> FROM (VALUES ...) AS v(<columns>) WHERE t.id = v.id`,
    ROWS_PER_STATEMENT rows at a time. `columns` are (name, cast) pairs, the first being id."""
    names = ", ".join(name for name, _ in columns)
    touched = 0
    for part in chunks(rows, ROWS_PER_STATEMENT):
        body, params = values(part, [cast for _, cast in columns])
        touched += execute(
            f"UPDATE {table} AS t SET {set_sql} FROM ({body}) AS v({names}) "  # noqa: S608
            "WHERE t.id = v.id",
            params,
        )
    return touched
