"""Spare tenant schemas, cloned ahead of time, so creating a tenant is a rename.

Cloning the template is DDL for every table, key and index (~200 relations): 0.3-0.6 s of
PostgreSQL's time that no code on our side can shorten (bench/tenant_create.py). With
TENANT_SPARE_SCHEMAS = N > 0, N schemas named `spare_<hex>` are kept cloned from the template;
`create_tenant` renames one (`ALTER SCHEMA ... RENAME`, a catalog update) inside its own
transaction, and a `tenants.fill_spares` job enqueued after the commit clones a replacement off
the request path. With the pool empty (a burst larger than N, or N = 0) it clones as before.

A spare is taken only while its `django_migrations` equal the template's (same count and latest
name, the clone plan's fingerprint): one cloned before a deploy's migrations is dropped by the
next fill instead of becoming a tenant with an old schema. Two creations never take the same
spare: each claims it with a transaction-scoped advisory lock and renames it under a savepoint,
moving to the next one if another transaction got there first.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from penguinmails.env import env_int
from penguinmails.queue.producer import enqueue
from tenants.services.schema_clone import _fingerprint, _q, clone_template_schema

SPARE_PREFIX = "spare_"
FILL_TASK = "tenants.fill_spares"


def spare_target() -> int:
    """TENANT_SPARE_SCHEMAS (default 0: no pool, every creation clones)."""
    return max(0, env_int("TENANT_SPARE_SCHEMAS", default=0))


def _spares(cursor: object) -> list[str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY nspname",
        [SPARE_PREFIX],
    )
    return [row[0] for row in cursor.fetchall()]  # type: ignore[attr-defined]


def _current(cursor: object, spare: str, template: str) -> bool:
    try:
        with transaction.atomic():
            return _fingerprint(cursor, spare) == _fingerprint(cursor, template)
    except DatabaseError:  # renamed or dropped by another transaction meanwhile
        return False


def take_spare(new_schema: str) -> bool:
    """Rename a current spare schema to `new_schema` in the caller's transaction; False when
    there is none (the caller clones instead)."""
    template = settings.TENANT_TEMPLATE_SCHEMA
    with connection.cursor() as cursor:
        for spare in _spares(cursor):
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [spare])
            if not cursor.fetchone()[0] or not _current(cursor, spare, template):
                continue
            try:
                with transaction.atomic():
                    cursor.execute(f"ALTER SCHEMA {_q(spare)} RENAME TO {_q(new_schema)}")
            except DatabaseError:  # taken (and committed) by another creation meanwhile
                continue
            return True
    return False


def fill_spares(target: int | None = None) -> tuple[int, int]:
    """Drop stale spares and clone new ones until `target` (TENANT_SPARE_SCHEMAS) are current;
    one transaction per schema. Returns (made, dropped)."""
    want = spare_target() if target is None else target
    template = settings.TENANT_TEMPLATE_SCHEMA
    made = dropped = 0
    with connection.cursor() as cursor:
        current = 0
        for spare in _spares(cursor):
            with transaction.atomic():
                cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [spare])
                if not cursor.fetchone()[0]:
                    continue  # being taken right now
                if _current(cursor, spare, template) and current < want:
                    current += 1
                    continue
                cursor.execute(f"DROP SCHEMA IF EXISTS {_q(spare)} CASCADE")
                dropped += 1
    for _ in range(max(0, want - current)):
        with transaction.atomic():
            clone_template_schema(template, SPARE_PREFIX + secrets.token_hex(6))
        made += 1
    return made, dropped


def request_fill() -> None:
    """After the caller's commit, ask a worker to top the pool up (no-op when it is off)."""
    if spare_target() <= 0:
        return
    transaction.on_commit(lambda: enqueue(FILL_TASK, idempotency_key=FILL_TASK))
