"""Leads through the API, the dashboard and the command: bulk limits and per-row errors, search
and filters, export, import pages with progress, viewer refusals, the outsider and exit codes."""

from __future__ import annotations

import csv
import io
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from campaigns.models import Lead, LeadImport, LeadList
from campaigns.services.leads import create_leads
from penguinmails.models import Job
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.leads.conftest import (
    csv_bytes,
    import_in,
    leads_in,
    principal,
    run_jobs,
    suppress,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(cast: Cast) -> dict[str, int]:
    with schema_context(cast.tenant.schema_name):
        result = create_leads(
            principal(cast.tenant, cast.owner),
            rows=[
                {
                    "email": "ann@alpha.example",
                    "first_name": "Ann",
                    "company": "Alpha",
                    "tags": ["vip"],
                    "timezone": "Europe/Paris",
                },
                {
                    "email": "bob@beta.example",
                    "last_name": "Builder",
                    "company": "Beta Co",
                    "tags": ["cold", "vip"],
                    "custom_fields": {"plan": "pro"},
                },
                {"email": "cy@gamma.example", "first_name": "Cy", "company": "Gamma"},
            ],
            list_name="Q3",
        )
        Lead.objects.filter(email="cy@gamma.example").update(status="unsubscribed")
        LeadList.objects.create(name="Empty")
    return {r["id"]: r["id"] for r in result.results} and {
        lead.email: lead.pk for lead in leads_in(cast).values()
    }


def _stream(response: object) -> str:
    return b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]


# --- API -----------------------------------------------------------------------------------------
def test_it_lists_searches_and_filters_leads_through_the_api(cast: Cast) -> None:
    ids = _seed(cast)
    api = key_client(cast.tenant, role="viewer").client
    body = api.get("/api/v1/leads").json()
    assert body["count"] == 3
    q3 = LeadList.objects.none()
    with schema_context(cast.tenant.schema_name):
        q3 = LeadList.objects.get(name="Q3")

    def emails(query: str) -> set[str]:
        return {r["email"] for r in api.get(f"/api/v1/leads?{query}").json()["results"]}

    assert emails("q=beta") == {"bob@beta.example"}
    assert emails("q=builder") == {"bob@beta.example"}
    assert emails("q=ANN") == {"ann@alpha.example"}
    assert emails("tag=vip") == {"ann@alpha.example", "bob@beta.example"}
    assert emails("status=unsubscribed") == {"cy@gamma.example"}
    assert emails(f"list={q3.pk}") == set(ids)
    assert emails("tag=vip&q=alpha") == {"ann@alpha.example"}
    assert api.get("/api/v1/leads?page_size=1").json()["next"]
    one = api.get(f"/api/v1/leads/{ids['bob@beta.example']}").json()
    assert one["custom_fields"] == {"plan": "pro"} and one["lists"] == [q3.pk]
    assert_error(api.get("/api/v1/leads?status=nope"), 400)


def test_it_bulk_creates_with_per_row_errors_and_limits(cast: Cast) -> None:
    suppress(cast, "blocked.example")
    api = key_client(cast.tenant, role="member").client
    response = api.post(
        "/api/v1/leads/bulk",
        {
            "leads": [
                {"email": "One@Example.com", "first_name": "One", "timezone": "America/New_York"},
                {"email": "nope"},
                {"email": "two@example.com", "timezone": "Nowhere/Land"},
                {"email": "one@example.com", "first_name": "Again"},
                {"email": "x@blocked.example"},
                {"email": "sales@example.com", "custom_fields": {"Bad Key": 1}},
            ],
            "list": "API",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["skipped"], body["failed"]) == (1, 2, 3)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "created"), (1, "failed"), (2, "failed"), (3, "skipped"), (4, "skipped"), (5, "failed")
    ]  # fmt: skip
    assert "email" in body["results"][1]["errors"]
    assert "timezone" in body["results"][2]["errors"]
    assert "suppressed" in body["results"][4]["reason"]
    assert set(leads_in(cast)) == {"one@example.com"}
    # Malformed payloads: refused whole, nothing written.
    too_many = [{"email": f"u{n}@example.com"} for n in range(1001)]
    for payload in (
        {"leads": too_many},
        {"leads": "not a list"},
        {"leads": [{"email": "ok@example.com"}, 5]},
        {"leads": [{"email": "ok@example.com", "salary": 1}]},
        {"leads": [{"email": "ok@example.com"}], "duplicates": "merge"},
        {"leads": [], "extra": 1},
        [{"email": "ok@example.com"}],
    ):
        assert_error(api.post("/api/v1/leads/bulk", payload, format="json"), 400)
    assert set(leads_in(cast)) == {"one@example.com"}
    exactly = [{"email": f"u{n}@example.com"} for n in range(1000)]
    ok = api.post("/api/v1/leads/bulk", {"leads": exactly}, format="json")
    assert ok.status_code == 200 and ok.json()["created"] == 1000


def test_it_creates_updates_and_deletes_one_lead(cast: Cast) -> None:
    api = key_client(cast.tenant, role="admin").client
    created = api.post("/api/v1/leads", {"email": "Zed@Example.com", "tags": ["A"]}, format="json")
    assert created.status_code == 201, created.content
    lead = created.json()
    assert lead["email"] == "zed@example.com" and lead["tags"] == ["a"]
    assert_error(api.post("/api/v1/leads", {"email": "ZED@example.com"}, format="json"), 409)
    assert_error(api.post("/api/v1/leads", {"email": "bad"}, format="json"), 400)
    changed = api.patch(
        f"/api/v1/leads/{lead['id']}",
        {"timezone": "Asia/Tokyo", "status": "replied", "custom_fields": {"score": 3}},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["timezone"], changed.json()["status"]) == ("Asia/Tokyo", "replied")
    error = assert_error(
        api.patch(f"/api/v1/leads/{lead['id']}", {"timezone": "Mars/Base"}, format="json"), 400
    )
    assert "timezone" in error["fields"]
    assert leads_in(cast)["zed@example.com"].timezone == "Asia/Tokyo"
    assert api.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert leads_in(cast) == {}


def test_it_imports_through_the_api_with_progress_and_errors(cast: Cast) -> None:
    api = key_client(cast.tenant, role="admin").client
    data = csv_bytes("mail,Name,Plan\na@example.com,Ann,pro\nbroken,Bob,\n")
    response = api.post(
        "/api/v1/leads/imports",
        {
            "file": io.BytesIO(data),
            "mapping": json.dumps({"mail": "email", "Name": "first_name"}),
            "duplicates": "skip",
        },
        format="multipart",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["mapping"]["Plan"] == "custom:plan"
    run_jobs()
    done = api.get(f"/api/v1/leads/imports/{body['id']}").json()
    assert (done["status"], done["created"], done["failed"], done["percent"]) == (
        "completed", 1, 1, 100
    )  # fmt: skip
    errors = _stream(api.get(f"/api/v1/leads/imports/{body['id']}/errors"))
    assert list(csv.reader(StringIO(errors)))[1][:3] == ["3", "broken", "failed"]
    assert leads_in(cast)["a@example.com"].custom_fields == {"plan": "pro"}
    bad = api.post("/api/v1/leads/imports", {"file": io.BytesIO(b"name\nx\n")}, format="multipart")
    assert "file" in assert_error(bad, 400)["fields"]


def test_it_refuses_writes_to_a_viewer(cast: Cast) -> None:
    ids = _seed(cast)
    lead_id = ids["ann@alpha.example"]
    imp = upload(cast, csv_bytes("email\nq@example.com\n"), start=False)
    api = key_client(cast.tenant, role="viewer").client
    assert api.get(f"/api/v1/leads/{lead_id}").status_code == 200
    assert_error(api.post("/api/v1/leads", {"email": "v@example.com"}, format="json"), 403)
    assert_error(api.post("/api/v1/leads/bulk", {"leads": [{"email": "v@example.com"}]}), 403)
    assert_error(api.patch(f"/api/v1/leads/{lead_id}", {"first_name": "X"}), 403)
    assert_error(api.delete(f"/api/v1/leads/{lead_id}"), 403)
    assert_error(
        api.post(
            "/api/v1/leads/imports",
            {"file": io.BytesIO(b"email\na@b.example\n")},
            format="multipart",
        ),
        403,
    )
    page = client_for(cast.viewer, cast.tenant)
    assert page.get("/campaigns/leads/").status_code == 200
    assert "Import CSV" not in page.get("/campaigns/leads/").content.decode()
    assert page.get("/campaigns/leads/imports/new/").status_code == 403
    assert page.post(f"/campaigns/leads/{lead_id}/", {"status": "active"}).status_code == 403
    assert page.post(f"/campaigns/leads/{lead_id}/delete/").status_code == 403
    assert page.post("/campaigns/leads/lists/new/", {"name": "V"}).status_code == 403
    assert (
        page.post(f"/campaigns/leads/imports/{imp.pk}/start/", {"map-0": "email"}).status_code
        == 403
    )
    assert leads_in(cast)["ann@alpha.example"].first_name == "Ann"
    assert "v@example.com" not in leads_in(cast)
    assert import_in(cast, imp.pk).job_id is None


def test_it_hides_acme_leads_from_the_outsider(cast: Cast) -> None:
    ids = _seed(cast)
    lead_id = ids["ann@alpha.example"]
    imp = upload(cast, csv_bytes("email\nq@example.com\n"), start=False)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/leads").json()["results"] == []
    assert_error(api.get(f"/api/v1/leads/{lead_id}"), 404)
    assert_error(api.patch(f"/api/v1/leads/{lead_id}", {"first_name": "X"}), 404)
    assert_error(api.delete(f"/api/v1/leads/{lead_id}"), 404)
    assert_error(api.get(f"/api/v1/leads/imports/{imp.pk}"), 404)
    assert_error(api.get(f"/api/v1/leads/imports/{imp.pk}/errors"), 404)
    own = client_for(cast.outsider, cast.other_tenant)
    for path in (
        f"/campaigns/leads/{lead_id}/",
        f"/campaigns/leads/imports/{imp.pk}/",
        f"/campaigns/leads/imports/{imp.pk}/progress/",
        f"/campaigns/leads/imports/{imp.pk}/errors.csv",
    ):
        assert own.get(path).status_code == 404, path
    for path in (
        f"/campaigns/leads/{lead_id}/",
        f"/campaigns/leads/{lead_id}/delete/",
        f"/campaigns/leads/imports/{imp.pk}/start/",
    ):
        assert own.post(path, {"status": "active", "map-0": "email"}).status_code == 404, path
    assert "ann@alpha.example" not in own.get("/campaigns/leads/").content.decode()
    assert "ann@alpha.example" not in _stream(own.get("/campaigns/leads/export.csv"))
    acme_host = client_for(cast.outsider, cast.tenant)
    response = acme_host.get("/campaigns/leads/")
    assert response.status_code in (302, 404) and "ann@alpha" not in response.content.decode()
    assert leads_in(cast)["ann@alpha.example"].first_name == "Ann"
    assert import_in(cast, imp.pk).job_id is None
    with schema_context(cast.other_tenant.schema_name):
        assert Lead.objects.count() == 0


# --- dashboard -----------------------------------------------------------------------------------
def test_it_imports_from_the_dashboard_with_mapping_and_progress(cast: Cast) -> None:
    client = client_for(cast.member, cast.tenant)
    assert client.get("/campaigns/leads/imports/new/").status_code == 200
    data = csv_bytes("Address,Given,Score\nann@example.com,Ann,9\nbad,Bo,1\n")
    response = client.post(
        "/campaigns/leads/imports/new/",
        {"file": io.BytesIO(data), "duplicates": "update", "list_name": "Fair"},
    )
    assert response.status_code == 302
    with schema_context(cast.tenant.schema_name):
        imp = LeadImport.objects.get()
    assert response["Location"] == f"/campaigns/leads/imports/{imp.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Map the columns" in page and "custom:score" in page
    assert not Job.objects.filter(task="leads.import").exists()  # waits for the mapping
    started = client.post(
        f"/campaigns/leads/imports/{imp.pk}/start/",
        {"map-0": "email", "map-1": "first_name", "map-2": "custom:score"},
    )
    assert started.status_code == 302
    panel = client.get(f"/campaigns/leads/imports/{imp.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in panel and 'data-status="pending"' in panel
    run_jobs()
    panel = client.get(f"/campaigns/leads/imports/{imp.pk}/progress/").content.decode()
    assert "hx-trigger" not in panel and 'data-status="completed"' in panel
    assert '<span data-count="created">1</span>' in panel
    assert '<span data-count="failed">1</span>' in panel
    assert 'value="100"' in panel and "errors.csv" in panel
    errors = _stream(client.get(f"/campaigns/leads/imports/{imp.pk}/errors.csv"))
    assert errors.splitlines()[1].startswith("3,bad,failed,email:")
    ann = leads_in(cast)["ann@example.com"]
    assert ann.first_name == "Ann" and ann.custom_fields == {"score": "9"}
    assert [lst.name for lst in ann.lists.all()] == ["Fair"]
    # An unusable file: the form again with the reason, nothing stored.
    bad = client.post("/campaigns/leads/imports/new/", {"file": io.BytesIO(b"a,b\n1,2\n")})
    assert bad.status_code == 400 and "email" in bad.content.decode()
    with schema_context(cast.tenant.schema_name):
        assert LeadImport.objects.count() == 1


def test_it_lists_filters_edits_and_exports_leads_in_the_dashboard(cast: Cast) -> None:
    ids = _seed(cast)
    client = client_for(cast.member, cast.tenant)
    page = client.get("/campaigns/leads/").content.decode()
    assert all(email in page for email in ids) and "Europe/Paris" in page
    page = client.get("/campaigns/leads/?q=gamma").content.decode()
    assert "cy@gamma.example" in page and "ann@alpha.example" not in page
    page = client.get("/campaigns/leads/?tag=vip&status=active").content.decode()
    assert "ann@alpha.example" in page and "cy@gamma.example" not in page
    exported = _stream(client.get("/campaigns/leads/export.csv?tag=vip"))
    rows = list(csv.DictReader(StringIO(exported)))
    assert {r["email"] for r in rows} == {"ann@alpha.example", "bob@beta.example"}
    bob = next(r for r in rows if r["email"] == "bob@beta.example")
    assert (bob["plan"], bob["lists"], bob["tags"]) == ("pro", "Q3", "cold;vip")
    ann_id = ids["ann@alpha.example"]
    saved = client.post(
        f"/campaigns/leads/{ann_id}/",
        {
            "first_name": "Anne",
            "timezone": "America/Chicago",
            "tags": "vip, warm",
            "status": "active",
        },
    )
    assert saved.status_code == 302
    ann = leads_in(cast)["ann@alpha.example"]
    assert (ann.first_name, ann.timezone, ann.tags) == ("Anne", "America/Chicago", ["vip", "warm"])
    bad = client.post(f"/campaigns/leads/{ann_id}/", {"timezone": "Moon/Base", "status": "active"})
    assert bad.status_code == 400 and "Unknown time zone" in bad.content.decode()
    assert client.post("/campaigns/leads/lists/new/", {"name": "Hot"}).status_code == 302
    with schema_context(cast.tenant.schema_name):
        assert LeadList.objects.filter(name="Hot").exists()
    assert client.post(f"/campaigns/leads/{ann_id}/delete/").status_code == 302
    assert "ann@alpha.example" not in leads_in(cast)


# --- command -------------------------------------------------------------------------------------
def test_it_imports_from_the_command_printing_progress_with_exit_codes(
    cast: Cast, tmp_path: Path, settings: object
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 10  # type: ignore[attr-defined]
    good = tmp_path / "leads.csv"
    good.write_text("email,company\n" + "".join(f"c{n}@example.com,Co\n" for n in range(25)))
    out = StringIO()
    call_command(
        "leads",
        "import",
        str(good),
        "--tenant",
        "acme",
        "--list",
        "Cmd",
        "--interval",
        "0.05",
        stdout=out,
    )
    text = out.getvalue()
    assert "25/25 rows (100%): 25 created" in text
    assert "Completed: 25 rows, 25 created, 0 updated, 0 skipped, 0 failed." in text
    with schema_context(cast.tenant.schema_name):
        assert LeadList.objects.get(name="Cmd").leads.count() == 25
    unusable = tmp_path / "bad.csv"
    unusable.write_text("name\nAnn\n")
    with pytest.raises(CommandError, match="email"):
        call_command("leads", "import", str(unusable), "--tenant", "acme", stdout=StringIO())
    with pytest.raises(CommandError, match="No such file"):
        call_command("leads", "import", str(tmp_path / "missing.csv"), "--tenant", "acme")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("leads", "import", str(good), "--tenant", "nope")
    exported = tmp_path / "out.csv"
    call_command("leads", "export", "--tenant", "acme", "--output", str(exported))
    assert len(exported.read_text().splitlines()) == 26
    # Globex has none of acme's leads.
    call_command("leads", "export", "--tenant", "globex", "--output", str(exported))
    assert len(exported.read_text().splitlines()) == 1
