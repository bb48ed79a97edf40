"""The statements a batch runs, and the staging COPY text they read (built in the reader)."""

from __future__ import annotations

import json
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
    """The records as the staging table's COPY input (text format, `_copy_chunks`). The records
    are spent (`Packer.pack`)."""
    packer = Packer()
    return b"".join(_copy_chunks([packer.pack(record) for record in records]))


# COPY's text format built over a chunk of records rather than field by field: each record is
# packed as it is validated, its fields joined with a control character (`Packer.pack`); a
# chunk's records are joined with another, then every backslash, tab, newline and carriage
# return escaped in one pass each over the chunk's text, then the separators made tabs and
# newlines. ~0.03 s a batch of 50,000 against ~0.1 s for `csv.writer(...).writerows`, in the
# reader, whose Python is ~40% of the import's CPU on two cores. A record where a cell holds one
# of the separators stays a list of its fields, and its chunk is written field by field.
_FIELD, _ROW, _NULL = "\x01", "\x02", "\x03"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_FLAGS = {True: "t", False: "f", None: _NULL}
_UNFLAGS = {"t": True, "f": False, _NULL: None}
_SEPARATORS = len(_COLUMNS) - 1
Packed = str | list[str]  # a record's fields joined by _FIELD, or (a cell holds a separator) listed


class Packer:
    """Packs a batch's records into their staging text as they are validated, one string each.

    A record is a list of 13 slots holding ~8 strings, a dict and flags, ~1 KB of objects; packed
    it is one string of ~200 bytes. A batch keeps its records until its end (a later repeat of
    an address merges into the first), so packing them early cut the reader's peak for a
    50,000-row batch from ~60 MB (bench/RESULTS.md, "import"). A repeat (~1% of the bench's
    rows) unpacks the first record, merges and packs it again (`unpack`).
    """

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, ...], str] = {(): "{}"}  # few distinct tag sets: quoted once
        self.tag_lists: dict[str, list[str]] = {"{}": []}  # and back (`unpack`)
        self.keys: dict[str, str] = {}  # a custom key as JSON, with its colon

    def pack(self, record: Record) -> Packed:
        """The record's staging fields joined by `_FIELD`; the record is spent (its slots become
        their text in place: a tuple per row cost more than the rest of the formatting)."""
        custom = record[CUSTOM]
        if custom:
            # What json.dumps writes (its own C string encoder), without its per-call cost.
            parts = []
            for key, value in custom.items():
                name = self.keys.get(key)
                if name is None:
                    name = self.keys[key] = _json_string(key) + ":"
                parts.append(name + _json_string(value))
            record[CUSTOM] = "{" + ",".join(parts) + "}"
        else:
            record[CUSTOM] = "{}"
        tags = tuple(record[TAGS])
        text = self.arrays.get(tags)
        if text is None:
            text = self.arrays[tags] = _array(record[TAGS])
            self.tag_lists[text] = list(tags)
        record[TAGS] = text
        record[ROLE] = _FLAGS[record[ROLE]]
        record[DISPOSABLE] = _FLAGS[record[DISPOSABLE]]
        null = record[MX] is None
        record[MX] = _FLAGS[record[MX]]
        line = _FIELD.join(record)
        if line.count(_FIELD) != _SEPARATORS or _ROW in line or line.count(_NULL) != null:
            return record  # a cell holds a separator: written field by field
        return line

    def unpack(self, packed: Packed) -> Record:
        """A packed record back as `RowCleaner` makes it (to merge a repeat into it)."""
        record: Record = packed.split(_FIELD) if isinstance(packed, str) else list(packed)
        record[CUSTOM] = json.loads(record[CUSTOM])
        record[TAGS] = list(self.tag_lists[record[TAGS]])
        for slot in (ROLE, DISPOSABLE, MX):
            record[slot] = _UNFLAGS[record[slot]]
        return record


# Built in chunks: a whole batch's text (~8 MB at 50,000 rows) and its `replace` copies were
# ~25 MB of the reader's peak (bench/RESULTS.md, "import"). The chunks stay apart (COPY takes
# them one after the other: joined, they were the batch's text twice at the end), and each
# chunk's packed records are dropped once it is built.
_CHUNK = 5_000


def _copy_chunks(packed: list[Packed]) -> list[bytes]:
    """The packed records as COPY text, in chunks; `packed` is emptied as they are built."""
    chunks = []
    while packed:
        chunk = packed[:_CHUNK]
        del packed[:_CHUNK]
        chunks.append(_copy_chunk(chunk))
    return chunks


def _copy_chunk(packed: list[Packed]) -> bytes:
    if not packed:
        return b""
    if not all(isinstance(line, str) for line in packed):
        return _copy_text_by_field(packed)
    text = _ROW.join(packed)  # type: ignore[arg-type]  # all str, checked above
    for char, escaped in _ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return (text.replace(_FIELD, "\t").replace(_ROW, "\n").replace(_NULL, "\\N") + "\n").encode()


def _copy_text_by_field(packed: list[Packed]) -> bytes:
    lines = []
    for record in packed:
        fields = []
        for slot, value in enumerate(record.split(_FIELD) if isinstance(record, str) else record):
            if slot == MX and value == _NULL:
                fields.append("\\N")
                continue
            for char, escaped in _ESCAPES:
                value = value.replace(char, escaped)
            fields.append(value)
        lines.append("\t".join(fields) + "\n")
    return "".join(lines).encode()


def _stage(cursor: Any, chunks: list[bytes]) -> None:
    """COPY the prepared records (their text, in chunks) into the staging table."""
    cursor.execute(_CREATE_STAGE)
    columns = ", ".join(_COLUMNS)
    sql = f"COPY {STAGE} ({columns}) FROM STDIN"
    with cursor.copy(sql) as copy:
        for chunk in chunks:
            copy.write(chunk)


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
