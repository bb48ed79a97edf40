"""The statements a batch runs, and the staging COPY text they read (built in the reader)."""

from __future__ import annotations

import json.encoder
from collections.abc import Callable
from typing import Any

from campaigns.models import (
    Lead,
    LeadImportError,
    Suppression,
    SuppressionReason,
)
from campaigns.services.lead_import.rows import (
    _COLUMNS,
    CUSTOM,
    DISPOSABLE,
    MX,
    ROLE,
    TAGS,
    TEXT_NAMES,
    Problem,
    Record,
)

STAGE = "pm_lead_import_stage"
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

# --- SQL ------------------------------------------------------------------------------------------
# Table and column names below come from the models, never from input (hence the S608 noqa).
# The staging table is the connection's own (TEMP) and empties itself at each commit, so a batch
# never sees another's rows and nothing is left behind; it is created by the first batch of each
# connection.
_CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
    email text,
    first_name text, last_name text, company text, title text, website text, phone text,
    timezone text, custom_fields jsonb, tags varchar(64)[],
    is_role_address boolean, is_disposable boolean, mx_ok boolean
) ON COMMIT DELETE ROWS
"""
_LEAD = Lead._meta.db_table
_THROUGH = Lead.lists.through._meta.db_table
_SUPPRESSION = Suppression._meta.db_table
_ERRORS = LeadImportError._meta.db_table
_TEXT_SET = ",\n    ".join(
    f"{name} = COALESCE(NULLIF(EXCLUDED.{name}, ''), l.{name})" for name in TEXT_NAMES
)
_INSERT = f"""
INSERT INTO {_LEAD} AS l ({", ".join(_COLUMNS)}, status, created_at, updated_at)
SELECT {", ".join(_COLUMNS)}, 'active', now(), now() FROM {STAGE}
"""  # noqa: S608
# `xmax = 0` is PostgreSQL's mark of a row this statement inserted (an updated row carries the
# updating transaction's id): how created and updated leads are told apart in one statement.
_UPSERT_UPDATE = f"""
WITH written AS ({_INSERT}
ON CONFLICT (email) DO UPDATE SET
    {_TEXT_SET},
    custom_fields = l.custom_fields || EXCLUDED.custom_fields,
    tags = CASE WHEN cardinality(EXCLUDED.tags) = 0 THEN l.tags ELSE ARRAY(
        SELECT t FROM unnest(l.tags || EXCLUDED.tags) WITH ORDINALITY AS u(t, n)
        GROUP BY t ORDER BY min(n)
    ) END,
    is_role_address = EXCLUDED.is_role_address,
    is_disposable = EXCLUDED.is_disposable,
    mx_ok = COALESCE(EXCLUDED.mx_ok, l.mx_ok),
    updated_at = EXCLUDED.updated_at
RETURNING id, xmax = 0 AS inserted),
-- A lead this statement created cannot be in the list yet (no other transaction sees it): its
-- membership is a plain insert, without the conflict check each row of ON CONFLICT pays.
member_new AS (
    INSERT INTO {_THROUGH} (lead_id, leadlist_id)
    SELECT id, %(list)s FROM written WHERE inserted AND %(list)s::bigint IS NOT NULL
),
member_old AS (
    INSERT INTO {_THROUGH} (lead_id, leadlist_id)
    SELECT id, %(list)s FROM written WHERE NOT inserted AND %(list)s::bigint IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT count(*) FILTER (WHERE inserted) FROM written
"""  # noqa: S608
# The staged addresses that were not inserted: they exist (skipped by policy).
_INSERT_SKIP = f"""
WITH written AS ({_INSERT} ON CONFLICT (email) DO NOTHING RETURNING email)
SELECT s.email FROM {STAGE} s WHERE NOT EXISTS (SELECT 1 FROM written w WHERE w.email = s.email)
"""  # noqa: S608
# An address suppressed itself wins over its domain (as in `suppressed_among`). Two equality
# joins rather than one join on `a OR b`, which PostgreSQL can only run as a nested loop.
_TAKE_OUT_SUPPRESSED = f"""
WITH hit AS (
    SELECT DISTINCT ON (email) email, is_domain, reason FROM (
        SELECT s.email, x.is_domain, x.reason, 0 AS rank
        FROM {STAGE} s JOIN {_SUPPRESSION} x ON x.value = s.email
        UNION ALL
        SELECT s.email, x.is_domain, x.reason, 1
        FROM {STAGE} s JOIN {_SUPPRESSION} x ON x.value = split_part(s.email, '@', 2)
    ) found ORDER BY email, rank
)
DELETE FROM {STAGE} s USING hit WHERE s.email = hit.email
RETURNING hit.email, hit.is_domain, hit.reason
"""  # noqa: S608
# The skip policy's list membership: every staged lead, the new and those left alone.
_ADD_TO_LIST = f"""
INSERT INTO {_THROUGH} (lead_id, leadlist_id)
SELECT l.id, %s FROM {STAGE} s JOIN {_LEAD} l ON l.email = s.email
ON CONFLICT DO NOTHING
"""  # noqa: S608


def _stage_text(records: list[Record]) -> bytes:
    """The records as the staging table's COPY input (text format, `_copy_text`), built in the
    reader thread. The records are spent: their custom fields, tags and flags become their text
    in place (a tuple per row cost more than the rest of the formatting)."""
    arrays: dict[tuple[str, ...], str] = {(): "{}"}  # few distinct tag sets: each quoted once
    keys: dict[str, str] = {}  # a custom key as JSON, with its colon
    for record in records:
        custom = record[CUSTOM]
        if custom:
            # What json.dumps writes (its own C string encoder), without its per-call cost.
            parts = []
            for key, value in custom.items():
                name = keys.get(key)
                if name is None:
                    name = keys[key] = _json_string(key) + ":"
                parts.append(name + _json_string(value))
            record[CUSTOM] = "{" + ",".join(parts) + "}"
        else:
            record[CUSTOM] = "{}"
        tags = tuple(record[TAGS])
        text = arrays.get(tags)
        if text is None:
            text = arrays[tags] = _array(record[TAGS])
        record[TAGS] = text
    return _copy_text(records)


# COPY's text format built over the whole batch rather than field by field: the fields joined
# with control characters as separators, then every backslash, tab, newline and carriage return
# escaped in one pass each over the joined text, then the separators made tabs and newlines.
# ~0.03 s a batch of 50,000 against ~0.1 s for `csv.writer(...).writerows` (QUOTE_ALL or not),
# in the reader, whose Python is ~40% of the import's CPU on two cores. A batch where a cell
# holds one of the separators (the counts tell) is written field by field instead.
_FIELD, _ROW, _NULL = "\x01", "\x02", "\x03"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_FLAGS = {True: "t", False: "f", None: _NULL}


# Built in chunks: a whole batch's text (~8 MB at 50,000 rows) and its `replace` copies were
# ~25 MB of the reader's peak (bench/RESULTS.md, "import").
_CHUNK = 5_000


def _copy_text(records: list[Record]) -> bytes:
    return b"".join(_copy_chunk(records[at : at + _CHUNK]) for at in range(0, len(records), _CHUNK))


def _copy_chunk(records: list[Record]) -> bytes:
    nulls = 0
    for record in records:
        record[ROLE] = _FLAGS[record[ROLE]]
        record[DISPOSABLE] = _FLAGS[record[DISPOSABLE]]
        if record[MX] is None:
            nulls += 1
        record[MX] = _FLAGS[record[MX]]
    if not records:
        return b""
    text = _ROW.join(map(_FIELD.join, records))
    expected = {
        _FIELD: len(records) * (len(_COLUMNS) - 1),
        _ROW: len(records) - 1,
        _NULL: nulls,
    }
    if any(text.count(mark) != count for mark, count in expected.items()):
        return _copy_text_by_field(records)
    for char, escaped in _ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return (text.replace(_FIELD, "\t").replace(_ROW, "\n").replace(_NULL, "\\N") + "\n").encode()


def _copy_text_by_field(records: list[Record]) -> bytes:
    lines = []
    for record in records:
        fields = []
        for slot, value in enumerate(record):
            if slot == MX and value == _NULL:
                fields.append("\\N")
                continue
            for char, escaped in _ESCAPES:
                value = value.replace(char, escaped)
            fields.append(value)
        lines.append("\t".join(fields) + "\n")
    return "".join(lines).encode()


def _stage(cursor: Any, text: bytes) -> None:
    """COPY the prepared records into the staging table."""
    cursor.execute(_CREATE_STAGE)
    columns = ", ".join(_COLUMNS)
    sql = f"COPY {STAGE} ({columns}) FROM STDIN"
    with cursor.copy(sql) as copy:
        copy.write(text)


def _array(items: list[str]) -> str:
    """A PostgreSQL array literal of strings."""
    quoted = (t.replace("\\", "\\\\").replace('"', '\\"') for t in items)
    return "{" + ",".join(f'"{t}"' for t in quoted) + "}"


def _take_out_suppressed(cursor: Any) -> dict[str, str]:
    """Remove the suppressed addresses from the staging table: {address: reason}."""
    if not Suppression.objects.exists():
        return {}
    cursor.execute(_TAKE_OUT_SUPPRESSED)
    return {
        email: (
            f"suppressed {'domain' if is_domain else 'address'} "
            f"({SuppressionReason(reason).label.lower()})"
        )
        for email, is_domain, reason in cursor.fetchall()
    }


def _write_problems(cursor: Any, import_id: int, problems: list[Problem]) -> None:
    if not problems:
        return
    columns = "lead_import_id, line, email, outcome, reason"
    with cursor.copy(f"COPY {_ERRORS} ({columns}) FROM STDIN") as copy:
        for line, email, outcome, reason in problems:
            copy.write_row((import_id, line, email[:320], str(outcome), reason[:500]))
