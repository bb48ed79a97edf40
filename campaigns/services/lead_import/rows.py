"""A CSV row validated into a staging record (`RowCleaner`), and repeated addresses folded."""

from __future__ import annotations

from typing import Any

from campaigns.imports import (
    CUSTOM_PREFIX,
    custom_key,
)
from campaigns.services.leads import (
    DISPOSABLE_DOMAINS,
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_VALUE,
    ROLE_LOCAL_PARTS,
    TEXT_FIELDS,
    _reason,
    _time_zones,
    clean_lead,
    normalize_tags,
    plain_email,
)

# A record is a list, one slot per staging column (a dataclass per row costs a second a million).
TEXT_NAMES = list(TEXT_FIELDS)  # first_name ... timezone
EMAIL, CUSTOM, TAGS, ROLE, DISPOSABLE, MX = 0, 8, 9, 10, 11, 12
TIMEZONE = 1 + TEXT_NAMES.index("timezone")
Record = list[Any]
Problem = tuple[int, str, str, str]  # (line, email, outcome, reason)
_TAGS_SEEN_LIMIT = 10_000
_COLUMNS = [
    "email",
    *TEXT_NAMES,
    "custom_fields",
    "tags",
    "is_role_address",
    "is_disposable",
    "mx_ok",
]


def _map_row(values: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {"custom_fields": {}}
    for header, target in mapping.items():
        value = (values.get(header) or "").strip()
        if not target:
            continue
        if target.startswith(CUSTOM_PREFIX):
            if value:
                raw["custom_fields"][custom_key(target[len(CUSTOM_PREFIX) :])] = value
        else:
            raw[target] = value
    return raw


class RowCleaner:
    """Validate a CSV row (its cells) into a record, or say why not.

    The same rules as `clean_lead` over `_map_row` (tests/leads/test_email_fast_path.py compares
    them on generated rows), by column index and without the dicts: the million-row import
    spends most of its Python time here. A row that fails any check goes through `clean_lead`
    itself, which words the reasons.
    """

    def __init__(self, headers: list[str], mapping: dict[str, str]) -> None:
        self.headers = headers
        self.mapping = mapping
        at = {header: index for index, header in enumerate(headers)}
        self.email_at = -1
        self.tags_at: int | None = None
        self.text: list[tuple[int, int, int]] = []  # (cell, record slot, max length)
        self.custom: list[tuple[str, int]] = []
        for header, target in mapping.items():
            if header not in at or not target:
                continue
            if target == "email":
                self.email_at = at[header]
            elif target == "tags":
                self.tags_at = at[header]
            elif target.startswith(CUSTOM_PREFIX):
                self.custom.append((custom_key(target[len(CUSTOM_PREFIX) :]), at[header]))
            elif target in TEXT_FIELDS:
                slot = 1 + TEXT_NAMES.index(target)
                self.text.append((at[header], slot, TEXT_FIELDS[target]))
        self.zones = _time_zones()
        # A tags cell repeats a lot (a file's rows share a handful of segments): each distinct
        # value is split once. The lists are shared between records, which never change them.
        self.tags_seen: dict[str, list[str]] = {}

    def __call__(self, cells: list[str]) -> Record | tuple[str, str]:
        """A record, or (the address as written, the reason) for a row that fails."""
        return self.fast(cells) or self.slow(cells)

    def fast(self, cells: list[str]) -> Record | None:
        if self.email_at < 0:
            return None
        raw_email = cells[self.email_at].strip()
        email = plain_email(raw_email)
        if email is None:
            # Not plain: `slow` asks email-validator once (it is ~150 µs for an invalid address,
            # and asking here first paid it twice for every failed row).
            return None
        record: Record = [email, "", "", "", "", "", "", "", None, None, False, False, None]
        for cell, slot, limit in self.text:
            value = cells[cell].strip()
            if len(value) > limit:
                return None
            record[slot] = value
        # The slot holds "" when no column maps to it.
        zone = record[TIMEZONE]
        if zone and zone not in self.zones:
            return None
        tags: list[str] = []
        if self.tags_at is not None:
            value = cells[self.tags_at].strip()
            if value:
                seen = self.tags_seen.get(value)
                if seen is None:
                    seen = self._split_tags(value)
                    if seen is None:
                        return None
                tags = seen
        custom: dict[str, str] = {}
        for key, cell in self.custom:
            value = cells[cell].strip()
            if value:
                if len(value) > MAX_CUSTOM_VALUE:
                    return None
                custom[key] = value
        if len(custom) > MAX_CUSTOM_FIELDS:
            return None
        local, _, domain = email.rpartition("@")
        record[CUSTOM] = custom
        record[TAGS] = tags
        record[ROLE] = local in ROLE_LOCAL_PARTS
        record[DISPOSABLE] = domain in DISPOSABLE_DOMAINS
        return record

    def _split_tags(self, value: str) -> list[str] | None:
        """A tags cell not seen yet, split and remembered; None if it is not valid (called only
        on a cache miss, so the per-row path stays one dict lookup)."""
        try:
            tags = normalize_tags(value)
        except ValueError:
            return None
        if len(self.tags_seen) >= _TAGS_SEEN_LIMIT:
            self.tags_seen.clear()
        self.tags_seen[value] = tags
        return tags

    def slow(self, cells: list[str]) -> Record | tuple[str, str]:
        raw = _map_row(dict(zip(self.headers, cells, strict=True)), self.mapping)
        data, errors = clean_lead(raw)
        if data is None:
            return str(raw.get("email") or "")[:320], _reason(errors)
        # Only reached if the fast checks are stricter than clean_lead somewhere: its answer
        # stands.
        record = [data.email, *(data.fields.get(name, "") for name in TEXT_NAMES)]
        flags = [data.is_role_address, data.is_disposable, None]
        return [*record, dict(data.custom_fields), data.tags, *flags]


def _merge_record(into: Record, later: Record) -> None:
    """A later row of the same address folded into the first, as `leads._merge` would apply
    them one after the other: non-empty values win, custom fields merge, tags add up."""
    for slot in range(1, 1 + len(TEXT_NAMES)):
        if later[slot]:
            into[slot] = later[slot]
    if later[CUSTOM]:
        into[CUSTOM] = {**into[CUSTOM], **later[CUSTOM]}
    if later[TAGS]:
        into[TAGS] = list(dict.fromkeys([*into[TAGS], *later[TAGS]]))
    into[ROLE], into[DISPOSABLE] = later[ROLE], later[DISPOSABLE]
    if later[MX] is not None:
        into[MX] = later[MX]
