"""Lean cloning of the template schema into a new tenant schema.

django-tenants' `clone_schema` SQL function is general (views, functions, triggers, every object
kind) and slow here: it re-creates a ~4,600-line function on every call and walks catalogs whose
size grows with the number of schemas, so creating a tenant took 0.7 s at 1 tenant and 4 s at 100
(bench/tenant_create.py). Tenant schemas hold only what Django migrations create (tables,
indexes, constraints, identity columns), so this copies exactly that:

- each table with `CREATE TABLE new.t (LIKE template.t INCLUDING DEFAULTS INCLUDING IDENTITY
  ...)`: columns, NOT NULL, defaults, identity columns with new sequences of their own;
- every constraint (primary, unique, check, exclusion, foreign keys) and every other index,
  replayed from `pg_get_constraintdef` / `pg_get_indexdef` under its original name (LIKE would
  rename indexes, and later migrations find indexes and constraints by name);
- rows the template holds (`django_migrations`, content types), with identity sequences moved past
  the copied ids;
- functions (`pg_get_functiondef`, the schema's name swapped in) and triggers (`pg_get_triggerdef`)
  of the campaigns' status counters, replayed after the rows, so the copied rows fire nothing.

The plan (statements with the schema names left out) is read from the catalog once per process
and reused while the template's applied migrations stay the same, so a creation costs the same at
1 tenant or 10,000. Anything else found in the template (views, sequences that are not identity
columns) makes it refuse loudly instead of producing a half-copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.db import connection, transaction

from penguinmails.errors import DomainError


class CloneUnsupported(DomainError):
    status_code = 500
    code = "clone_unsupported"


@dataclass(frozen=True)
class ClonePlan:
    fingerprint: tuple[int, str]
    tables: tuple[str, ...]
    # (table, constraint name, definition as printed with the template on the search path)
    constraints: tuple[tuple[str, str, str], ...]
    # CREATE INDEX statements of indexes that back no constraint, with `{schema}` for the schema
    indexes: tuple[str, ...]
    tables_with_rows: tuple[str, ...]
    # (table, column) of identity columns whose sequence must follow copied rows
    identity_columns: tuple[tuple[str, str], ...]
    # CREATE FUNCTION statements with `{schema}` for the schema, then CREATE TRIGGER statements
    # with tables and functions unqualified (replayed with the new schema on the path)
    functions: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()


_lock = threading.Lock()
_plans: dict[str, ClonePlan] = {}


def _q(name: str) -> str:
    """Quote an identifier. Every name put into SQL text below goes through this; the
    statements are built from catalog names and validated schema names, never user text."""
    return '"' + name.replace('"', '""') + '"'


def _fingerprint(cursor: object, template: str) -> tuple[int, str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT count(*), coalesce(max(app || '.' || name), '') "  # noqa: S608 - quoted name
        f"FROM {_q(template)}.django_migrations"
    )
    count, last = cursor.fetchone()  # type: ignore[attr-defined]
    return int(count), str(last)


def _read_plan(cursor: object, template: str, fingerprint: tuple[int, str]) -> ClonePlan:
    c = cursor
    c.execute(  # type: ignore[attr-defined]
        """
        SELECT c.relname, c.relkind FROM pg_class c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind NOT IN ('i', 'I')
        ORDER BY c.relname
        """,
        [template],
    )
    rows = c.fetchall()  # type: ignore[attr-defined]
    tables = tuple(name for name, kind in rows if kind in ("r", "p"))
    sequences = {name for name, kind in rows if kind == "S"}
    others = sorted(name for name, kind in rows if kind not in ("r", "p", "S"))
    if others:
        raise CloneUnsupported(f"Template schema holds objects that cannot be cloned: {others}")
    c.execute(  # type: ignore[attr-defined]
        """
        SELECT t.relname, a.attname FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid
        WHERE t.relnamespace = %s::regnamespace AND a.attidentity <> '' AND NOT a.attisdropped
        """,
        [template],
    )
    identity = tuple((t, col) for t, col in c.fetchall())  # type: ignore[attr-defined]
    c.execute(  # type: ignore[attr-defined]
        """
        SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid
        WHERE s.relnamespace = %s::regnamespace AND s.relkind = 'S' AND d.deptype = 'i'
        """,
        [template],
    )
    identity_sequences = {r[0] for r in c.fetchall()}  # type: ignore[attr-defined]
    loose = sorted(sequences - identity_sequences)
    if loose:
        raise CloneUnsupported(f"Template schema has non-identity sequences: {loose}")
    # Print definitions with only the template on the search path: its own tables come out
    # unqualified (so they resolve to the new schema when replayed), public ones qualified.
    # Names are kept as they are: later migrations find indexes and constraints by name.
    c.execute("SELECT current_setting('search_path')")  # type: ignore[attr-defined]
    saved_path = c.fetchone()[0]  # type: ignore[attr-defined]
    c.execute(f"SET LOCAL search_path TO {_q(template)}")  # type: ignore[attr-defined]
    try:
        c.execute(  # type: ignore[attr-defined]
            """
            SELECT t.relname, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
            WHERE k.connamespace = %s::regnamespace AND k.contype IN ('p', 'u', 'c', 'x', 'f')
            -- primary and unique keys before the foreign keys that depend on them
            ORDER BY k.contype = 'f', t.relname, k.conname
            """,
            [template],
        )
        constraints = tuple((t, n, d) for t, n, d in c.fetchall())  # type: ignore[attr-defined]
        c.execute(  # type: ignore[attr-defined]
            """
            SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relnamespace = %s::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                              AND k.conrelid = i.indrelid)
            ORDER BY 1
            """,
            [template],
        )
        printed = tuple(r[0] for r in c.fetchall())  # type: ignore[attr-defined]
        # Pretty-printed: the table and the template's functions unqualified (the template is
        # the search path).
        c.execute(  # type: ignore[attr-defined]
            """
            SELECT pg_get_triggerdef(t.oid, true) FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal
            ORDER BY c.relname, t.tgname
            """,
            [template],
        )
        triggers = tuple(r[0] for r in c.fetchall())  # type: ignore[attr-defined]
        # pg_get_indexdef always qualifies the table (PostgreSQL >= 10); swap in a placeholder.
        c.execute("SELECT quote_ident(%s)", [template])  # type: ignore[attr-defined]
        qualified = c.fetchone()[0]  # type: ignore[attr-defined]
        indexes = []
        for definition in printed:
            for form in (f" ON ONLY {qualified}.", f" ON {qualified}."):
                if form in definition:
                    indexes.append(definition.replace(form, form.replace(qualified, "{schema}"), 1))
                    break
            else:
                raise CloneUnsupported(f"Unexpected index definition: {definition}")
        functions = _functions(c, template, qualified)
    finally:
        c.execute(f"SET LOCAL search_path TO {saved_path}")  # type: ignore[attr-defined]
    with_rows = []
    for table in tables:
        query = f"SELECT EXISTS (SELECT 1 FROM {_q(template)}.{_q(table)})"  # noqa: S608
        c.execute(query)  # type: ignore[attr-defined]
        if c.fetchone()[0]:  # type: ignore[attr-defined]
            with_rows.append(table)
    return ClonePlan(
        fingerprint,
        tables,
        constraints,
        tuple(indexes),
        tuple(with_rows),
        identity,
        functions,
        triggers,
    )


def _functions(cursor: object, template: str, qualified: str) -> tuple[str, ...]:
    """The template's functions as CREATE statements with `{schema}` for its name (the body is
    kept as is: the trigger functions name no schema, they use TG_TABLE_SCHEMA)."""
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = %s::regnamespace "
        "ORDER BY p.proname",
        [template],
    )
    found = []
    for (definition,) in cursor.fetchall():  # type: ignore[attr-defined]
        head = f"CREATE OR REPLACE FUNCTION {qualified}."
        if not definition.startswith(head):
            raise CloneUnsupported(f"Unexpected function definition: {definition[:200]}")
        found.append("CREATE FUNCTION {schema}." + definition[len(head) :])
    return tuple(found)


def clone_template_schema(template: str, new_schema: str) -> None:
    """Create `new_schema` as a copy of `template`'s tables, keys and rows.

    Runs on the default connection in the caller's transaction: when the caller rolls back, the
    schema goes too.
    """
    # SET LOCAL below needs a transaction; inside the caller's, this is a savepoint.
    with transaction.atomic(), connection.cursor() as cursor:
        fingerprint = _fingerprint(cursor, template)
        with _lock:
            plan = _plans.get(template)
        if plan is None or plan.fingerprint != fingerprint:
            plan = _read_plan(cursor, template, fingerprint)
            with _lock:
                _plans[template] = plan
        src, dst = _q(template), _q(new_schema)
        statements = [f"CREATE SCHEMA {dst}"]
        # Columns, defaults and identity columns (each with a new sequence of its own);
        # constraints and indexes follow under their original names.
        statements += [
            f"CREATE TABLE {dst}.{_q(t)} (LIKE {src}.{_q(t)} INCLUDING DEFAULTS "
            "INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)"
            for t in plan.tables
        ]
        statements += [
            f"INSERT INTO {dst}.{_q(t)} SELECT * FROM {src}.{_q(t)}"  # noqa: S608
            for t in plan.tables_with_rows
        ]
        with_rows = set(plan.tables_with_rows)
        statements += [
            f"SELECT setval(pg_get_serial_sequence('{dst}.{_q(t)}', '{col}'), "  # noqa: S608
            f"(SELECT max({_q(col)}) FROM {dst}.{_q(t)}))"
            for t, col in plan.identity_columns
            if t in with_rows
        ]
        cursor.execute(";\n".join(statements))
        cursor.execute("SELECT current_setting('search_path')")
        saved_path = cursor.fetchone()[0]
        # Unqualified names in the printed definitions now resolve to the new schema.
        cursor.execute(f"SET LOCAL search_path TO {dst}, public")
        try:
            ddl = [
                f"ALTER TABLE {_q(t)} ADD CONSTRAINT {_q(name)} {definition}"
                for t, name, definition in plan.constraints
            ]
            ddl += [definition.replace("{schema}", dst, 1) for definition in plan.indexes]
            ddl += [definition.replace("{schema}", dst, 1) for definition in plan.functions]
            ddl += list(plan.triggers)
            if ddl:
                cursor.execute(";\n".join(ddl))
        finally:
            cursor.execute(f"SET LOCAL search_path TO {saved_path}")
