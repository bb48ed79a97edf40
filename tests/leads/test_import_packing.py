"""The reader packs each record into its staging text as it is validated (`Packer`): the staged
text must be what the records merged whole would have staged, whatever the cells hold."""

from __future__ import annotations

import copy
import random

import pytest

from campaigns.models import ImportStatus
from campaigns.services.lead_import import EMAIL, Record, RowCleaner, _stage_text, prepare_batch
from campaigns.services.lead_import.rows import _merge_record
from tests.conftest import Cast
from tests.leads.conftest import csv_bytes, import_in, leads_in, run_jobs, upload

HEADERS = ["email", "first_name", "company", "tags", "Plan", "Seats"]
MAPPING = {
    "email": "email",
    "first_name": "first_name",
    "company": "company",
    "tags": "tags",
    "Plan": "custom:plan",
    "Seats": "custom:seats",
}
# The packing's separators (\x01-\x03) among the cells, and what COPY's text format escapes.
ODD = ["", "", "", "x", "\x01", "\x02", "\x03", "\t", "\\", "\n", "é€😀", '"q"']


def _rows(rnd: random.Random, count: int) -> list[tuple[int, list[str]]]:
    rows = []
    for line in range(2, count + 2):
        email = f"p{rnd.randrange(40)}@example.com"  # ~40 addresses: most repeat
        if rnd.random() < 0.3:
            email = email.upper()
        cells = [
            email,
            rnd.choice(["", "Ann", "Bo"]) + rnd.choice(ODD),
            rnd.choice(["", "Acme"]) + rnd.choice(ODD),
            rnd.choice(["", "vip", "a, b", "b; c"]),
            rnd.choice(["", "free", "pro"]) + rnd.choice(ODD),
            rnd.choice(["", "5", "9"]),
        ]
        rows.append((line, cells))
    return rows


def _staged_whole(rows: list[tuple[int, list[str]]], *, update: bool) -> bytes:
    """The records merged as lists first, then staged: what the reader did before packing."""
    cleaner = RowCleaner(HEADERS, MAPPING)
    staged: dict[str, Record] = {}
    for _, cells in rows:
        record = cleaner(cells)
        assert not isinstance(record, tuple), record
        first = staged.get(record[EMAIL])
        if first is None:
            staged[record[EMAIL]] = record
        elif update:
            _merge_record(first, record)
    return _stage_text(list(staged.values()))


@pytest.mark.parametrize("update", [True, False])
def test_it_stages_packed_records_as_the_records_merged_whole(update: bool) -> None:
    rnd = random.Random(16)
    for _ in range(40):
        rows = _rows(rnd, rnd.randrange(1, 120))
        batch = prepare_batch(
            iter(copy.deepcopy(rows)), cleaner=RowCleaner(HEADERS, MAPPING), mx=None, update=update
        )
        assert b"".join(batch.stage) == _staged_whole(rows, update=update)
        emails = [cells[0].lower() for _, cells in rows]
        assert (list(batch.lines), batch.emails) == ([line for line, _ in rows], emails)
        first = {}
        for (line, _), email in zip(rows, emails, strict=True):
            first.setdefault(email, line)
        assert batch.staged == len(first)
        assert batch.repeats == {
            line: first[email]
            for (line, _), email in zip(rows, emails, strict=True)
            if first[email] != line
        }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("odd", ["\x01", "\x02", "\x03"])
def test_it_merges_a_repeat_into_a_record_whose_cell_holds_a_separator(
    cast: Cast, odd: str
) -> None:
    # The first record of the address stays a list (`Packer.pack`); the repeat unpacks it.
    body = (
        "email,company,tags,Plan,Seats\n"
        f'ann@example.com,"A{odd}B",x,"free{odd}",\n'
        "bo@example.com,Bo Co,,,\n"
        'ANN@example.com,,"y, x",,5\n'
    )
    lead_import = upload(cast, csv_bytes(body))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.created, done.updated, done.skipped, done.failed) == (
        ImportStatus.COMPLETED,
        2,
        1,
        0,
        0,
    )
    ann = leads_in(cast)["ann@example.com"]
    assert (ann.company, ann.tags) == (f"A{odd}B", ["x", "y"])
    assert ann.custom_fields == {"plan": f"free{odd}", "seats": "5"}
    assert sorted(leads_in(cast)) == ["ann@example.com", "bo@example.com"]
