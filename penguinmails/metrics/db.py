"""SQL statement timing for every connection of every process (penguinmails_db_query_*)."""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from penguinmails.metrics.instruments import DB_QUERY_TIME

_KINDS = {"select": "select", "insert": "insert", "update": "update", "delete": "delete"}


def statement_kind(sql: str) -> str:
    head = sql.lstrip()[:6].lower()
    if head.startswith("with"):
        return "with"
    return _KINDS.get(head, "other")


def timed_execute(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        DB_QUERY_TIME.labels(statement_kind(sql)).observe(time.perf_counter() - started)


def _on_connection(sender: Any, connection: BaseDatabaseWrapper, **_: Any) -> None:
    # The signal fires on every (re)connection of the same wrapper: wrap once. First in the list:
    # `with connection.execute_wrapper(w):` pops the last entry on exit, which must stay theirs
    # even when the connection was (re)made inside their block.
    if timed_execute not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, timed_execute)


def install() -> None:
    """Time every statement from now on (PenguinmailsConfig.ready)."""
    connection_created.connect(_on_connection, dispatch_uid="penguinmails.metrics.db")
