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
    """A row source for `FROM ({body}) AS v(...)`: `SELECT * FROM unnest(%s::bigint[],
    %s::text[], ...)` with one array parameter per column. The statement's text is the same
    for any number of rows, so psycopg converts it once per process (a VALUES list of 100 rows
    is past its 4,096-character cache and was split again by a regex on every call, ~1 ms of
    client CPU a chunk) and PostgreSQL parses a few arrays instead of thousands of literals."""
    # The casts are the callers' type names; every value is a parameter.
    sql = "SELECT * FROM unnest(" + ", ".join(f"%s::{c}[]" for c in casts) + ")"  # noqa: S608
    params: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    if not params:  # no rows: empty arrays of the right count
        params = [[] for _ in casts]
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
