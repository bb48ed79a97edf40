"""The import's fast paths agree with the slow, canonical ones: `plain_email` with
email-validator, `RowCleaner` with `clean_lead` over `_map_row`, on many generated inputs."""

from __future__ import annotations

import io
import json
import random
import re
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email

from campaigns.imports import UnusableFile, check_text, count_rows, default_mapping, iter_records
from campaigns.services.lead_import import CUSTOM, RowCleaner, _map_row, _stage_text
from campaigns.services.leads import allows_test_domains, clean_lead, normalize_email, plain_email

LOCAL_CHARS = "abcXYZ019._%+-'!#&*/=?^`{|}~\"() ,;:<>@[]\\é"
DOMAIN_CHARS = "abcXYZ019.-_ é"
TLDS = ["com", "ORG", "io", "test", "local", "arpa", "invalid", "c0m", "x", "onion", "example"]


def _address(rnd: random.Random) -> str:
    if rnd.random() < 0.2:  # the shape of most real addresses, edge lengths included
        local = "".join(rnd.choice("abXY09_+-") for _ in range(rnd.randrange(1, 66)))
        host = "".join(rnd.choice("abXY09-") for _ in range(rnd.randrange(1, 65)))
        return f"{local}.{local[:3]}@{host}.{rnd.choice(TLDS)}"
    local = "".join(rnd.choice(LOCAL_CHARS) for _ in range(rnd.choice([1, 3, 8, 64, 65, 70])))
    if rnd.random() < 0.5:  # mostly plausible local parts, so the fast path is exercised
        local = "".join(rnd.choice("abcXY019._+-") for _ in range(rnd.randrange(1, 70)))
    labels = [
        "".join(rnd.choice(DOMAIN_CHARS if rnd.random() < 0.2 else "abcXY09-") for _ in range(n))
        for n in (rnd.choice([1, 2, 5, 63, 64]) for _ in range(rnd.randrange(0, 4)))
    ]
    domain = ".".join([*labels, rnd.choice(TLDS)])
    if rnd.random() < 0.05:
        domain = "xn--" + domain
    return f"{local}@{domain}" if rnd.random() < 0.97 else local


def test_it_accepts_with_the_fast_path_only_what_email_validator_accepts_alike() -> None:
    rnd = random.Random(20240601)
    fast_hits = 0
    for _ in range(20_000):
        raw = _address(rnd)
        fast = plain_email(raw)
        try:
            slow: str | None = validate_email(
                raw, check_deliverability=False, test_environment=allows_test_domains()
            ).normalized.lower()
        except EmailNotValidError:
            slow = None
        if fast is not None:
            fast_hits += 1
            assert fast == slow, raw
    assert fast_hits > 500  # the generator does reach the fast path (about 900 times)


def test_it_takes_the_fast_path_for_plain_addresses_and_falls_back_for_the_rest() -> None:
    assert plain_email("Ann.Lee+news@Example.COM") == "ann.lee+news@example.com"
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    for unusual in (
        "ann@example.local",  # special-use (`.test` too unless allowed: test_test_domains.py)
        "ann@xn--bcher-kva.example",  # Punycode
        "ann@ab--cd.example",  # refused by IDNA
        '"ann lee"@example.com',  # quoted
        "josé@example.com",  # internationalised
        "ann..lee@example.com",
        "ann@example",
        "a" * 65 + "@example.com",
    ):
        assert plain_email(unusual) is None, unusual
    assert normalize_email("josé@Example.com") == "josé@example.com"


def test_it_cleans_csv_rows_like_clean_lead() -> None:
    headers = ["Email", "First Name", "Company", "Time zone", "Tags", "Deal Size", "Phone"]
    mapping = default_mapping(headers)
    cleaner = RowCleaner(headers, mapping)
    rnd = random.Random(7)
    cells_by_column = [
        ["ann@example.com", " BOB@Example.org ", "bad", "", "info@x.example", "josé@example.com"],
        ["Ann", "", "  Bob  ", "x" * 201],
        ["Acme", "", "Big\nCo"],
        ["", "Europe/Paris", "Mars/Base", " UTC "],
        ["", "vip, q3", "a;b|c", "x" * 65, ",".join(f"t{n}" for n in range(31))],
        ["", "100", "x" * 1001],
        ["", "+33 1 23", "9" * 65],
    ]
    for _ in range(3000):
        cells = [rnd.choice(column) for column in cells_by_column]
        got = cleaner(cells)
        data, errors = clean_lead(_map_row(dict(zip(headers, cells, strict=True)), mapping))
        if data is None:
            assert isinstance(got, tuple), cells
            continue
        assert isinstance(got, list), (cells, got, errors)
        assert got[0] == data.email
        assert got[1:8] == [
            data.fields.get(name, "")
            for name in ("first_name", "last_name", "company", "title", "website", "phone")
        ] + [data.fields.get("timezone", "")]
        assert (got[8], got[9], got[10], got[11]) == (
            data.custom_fields,
            data.tags,
            data.is_role_address,
            data.is_disposable,
        )


def test_it_counts_the_rows_the_import_reads() -> None:
    body = (
        b'email,name\n\na@example.com,Ann\n , \n"",""\n"b@example.com","Bo\n\nB"\n'
        b",\n\t,x\nc@example.com\n"
    )
    shape: dict[str, Any] = {"delimiter": ",", "headers": ["email", "name"]}
    rows = list(iter_records(io.BytesIO(body), **shape))
    assert [line for line, _ in rows] == [3, 6, 10, 11]
    assert count_rows(io.BytesIO(body), **shape) == len(rows)


def _copy_fields(line: str) -> list[str | None]:
    """One line of COPY's text format, unescaped (None for NULL)."""
    escapes = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    unescape = re.compile(r"\\(.)")
    return [
        None if field == "\\N" else unescape.sub(lambda m: escapes[m[1]], field)
        for field in line[:-1].split("\t")
    ]


def test_it_stages_custom_fields_as_json_dumps_would() -> None:
    rnd = random.Random(11)
    alphabet = 'ab "\\/\n\t\x00\x1fé€😀'
    for _ in range(500):
        custom = {
            f"k{n}": "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))
            for n in range(rnd.randrange(0, 4))
        }
        record = ["a@example.com", "", "", "", "", "", "", "", dict(custom), [], False, False, None]
        staged = _copy_fields(_stage_text([record]).decode())
        assert json.loads(staged[CUSTOM] or "") == custom
        assert json.loads(staged[CUSTOM] or "") == json.loads(json.dumps(custom))


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        (b"email\na@x.io\nb@x.io\n", 2),
        (b"\xef\xbb\xbfemail\r\na@x.io\r\nb@x.io", 2),  # BOM, CRLF, no final line end
        (b"email\ra@x.io\rb@x.io\r", 2),  # old Mac line ends
        (b'email,note\na@x.io,"two\nlines"\n\nb@x.io,\n', 4),  # 2 rows: an upper bound
        (b"email\n", 0),
    ],
)
def test_it_counts_lines_as_the_rows_upper_bound(body: bytes, lines: int) -> None:
    assert check_text(io.BytesIO(body)) == lines


def test_it_names_the_line_of_bytes_that_are_not_utf8_past_the_first_mib() -> None:
    body = b"email\n" + b"a@example.com\n" * 100_000 + b"c\xff@example.com\n"
    with pytest.raises(UnusableFile, match="at line 100002"):
        check_text(io.BytesIO(body))
