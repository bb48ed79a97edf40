"""Domains through the dashboard, the API and the command: permissions, the outsider, bad input,
plan limits and exit codes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from billing.entitlements import default_plan
from billing.models import TenantPlan
from deliverability.models import DomainStatus, SendingDomain
from deliverability.services.domains import add_domain
from penguinmails.models import Job, JobStatus
from penguinmails.sandbox.dns import SandboxDnsServer
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.domains.conftest import domain_in, principal, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)

DOMAIN = "acme-mail.test"


def _added(cast: Cast, name: str = DOMAIN) -> SendingDomain:
    with schema_context(cast.tenant.schema_name):
        return add_domain(principal(cast.tenant, cast.owner), name=name)


def _status(cast: Cast, name: str = DOMAIN) -> str:
    found = domain_in(cast.tenant, name)
    assert found is not None
    return found.status


# --- dashboard -----------------------------------------------------------------------------------
def test_it_adds_publishes_and_verifies_from_the_dashboard(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    client = client_for(cast.admin, cast.tenant)
    response = client.post("/domains/add/", {"name": "Acme-Mail.test"})
    assert response.status_code == 302
    domain = domain_in(cast.tenant, DOMAIN)
    assert domain is not None and response["Location"] == f"/domains/{domain.pk}/"
    run_jobs()
    page = client.get(f"/domains/{domain.pk}/").content.decode()
    assert 'data-status="verified"' in page
    dkim = next(r for r in domain.records.all() if r.purpose == "dkim")
    assert dkim.value in page  # the long TXT shown whole, ready to copy
    assert page.count("data-copy=") == len(domain.records.all())
    assert page.count('data-record-status="ok"') == 6
    listing = client.get("/domains/").content.decode()
    assert DOMAIN in listing and 'data-status="verified"' in listing
    # "Verify now" over htmx answers the status panel, polling while the check waits.
    panel = client.post(f"/domains/{domain.pk}/verify/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    assert 'hx-trigger="every 2s"' in panel.content.decode()
    assert 'data-status="verifying"' in panel.content.decode()
    run_jobs()
    assert "hx-trigger" not in client.get(f"/domains/{domain.pk}/status/").content.decode()


def test_it_shows_field_errors_for_a_bad_name_and_writes_nothing(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    for bad in ("not a domain", "localhost", "-bad-.com", "1.2.3.4"):
        response = client.post("/domains/add/", {"name": bad})
        assert response.status_code == 400, bad
        assert "errorlist" in response.content.decode(), bad
    with schema_context(cast.tenant.schema_name):
        assert SendingDomain.objects.count() == 0
    assert not Job.objects.exists()


def test_it_lets_a_viewer_look_but_not_add_verify_or_remove(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    domain = _added(cast)
    jobs_before = Job.objects.count()
    client = client_for(cast.viewer, cast.tenant)
    page = client.get(f"/domains/{domain.pk}/")
    assert page.status_code == 200 and "Verify now" not in page.content.decode()
    assert "Add domain" not in client.get("/domains/").content.decode()
    assert client.post("/domains/add/", {"name": "other.test"}).status_code == 403
    assert client.post(f"/domains/{domain.pk}/verify/").status_code == 403
    assert client.post(f"/domains/{domain.pk}/remove/").status_code == 403
    assert domain_in(cast.tenant, "other.test") is None
    assert _status(cast) == DomainStatus.PENDING
    assert Job.objects.count() == jobs_before


def test_it_hides_acme_domains_from_the_outsider(cast: Cast, dns_server: SandboxDnsServer) -> None:
    domain = _added(cast)
    jobs_before = Job.objects.count()
    own_host = client_for(cast.outsider, cast.other_tenant)
    for path in (f"/domains/{domain.pk}/", f"/domains/{domain.pk}/status/"):
        assert own_host.get(path).status_code == 404, path
    for path in (f"/domains/{domain.pk}/verify/", f"/domains/{domain.pk}/remove/"):
        assert own_host.post(path).status_code == 404, path
    assert DOMAIN not in own_host.get("/domains/").content.decode()
    # On acme's host the outsider is nobody: sent to log in, shown nothing.
    acme_host = client_for(cast.outsider, cast.tenant)
    for response in (
        acme_host.get(f"/domains/{domain.pk}/"),
        acme_host.post(f"/domains/{domain.pk}/verify/"),
    ):
        assert response.status_code in (302, 404)
        assert DOMAIN not in response.content.decode()
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/domains").json()["results"] == []
    assert_error(api.get(f"/api/v1/domains/{domain.pk}"), 404)
    assert_error(api.post(f"/api/v1/domains/{domain.pk}/verify"), 404)
    assert_error(api.delete(f"/api/v1/domains/{domain.pk}"), 404)
    assert _status(cast) == DomainStatus.PENDING
    assert Job.objects.count() == jobs_before


# --- API -----------------------------------------------------------------------------------------
def test_it_creates_lists_verifies_and_deletes_through_the_api(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    api = key_client(cast.tenant, role="admin").client
    created = api.post("/api/v1/domains", {"name": "Acme-Mail.test"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == DOMAIN and body["status"] == "pending"
    assert {r["purpose"] for r in body["records"]} >= {"mx", "spf", "dkim", "dmarc", "tracking"}
    assert "dkim_private_key" not in json.dumps(body)
    assert "PRIVATE KEY" not in json.dumps(body)
    run_jobs()
    (listed,) = api.get("/api/v1/domains").json()["results"]
    assert listed["status"] == "verified"
    accepted = api.post(f"/api/v1/domains/{body['id']}/verify")
    assert accepted.status_code == 202
    job = Job.objects.get(pk=accepted.json()["job_id"])
    assert job.task == "domains.verify" and job.tenant_id == cast.tenant.pk
    run_jobs()
    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED
    assert api.get(f"/api/v1/domains/{body['id']}").json()["status"] == "verified"
    assert api.delete(f"/api/v1/domains/{body['id']}").status_code == 204
    assert domain_in(cast.tenant, DOMAIN) is None
    run_jobs()  # the unpublish job removes the records from the sandbox DNS
    assert dns_server.store.lookup(f"_dmarc.{DOMAIN}") == []
    assert api.get(f"/api/v1/domains/{body['id']}").status_code == 404


def test_it_answers_400_with_field_errors_for_bad_input(cast: Cast) -> None:
    api = key_client(cast.tenant, role="admin").client
    error = assert_error(api.post("/api/v1/domains", {"name": "no_such domain"}), 400)
    assert "name" in error["fields"]
    error = assert_error(
        api.post("/api/v1/domains", {"name": "acme.test", "tracking_host": "t.other.test"}), 400
    )
    assert "tracking_host" in error["fields"]
    assert_error(api.post("/api/v1/domains", {}), 400)
    with schema_context(cast.tenant.schema_name):
        assert SendingDomain.objects.count() == 0


def test_it_refuses_writes_to_a_viewer_key(cast: Cast, dns_server: SandboxDnsServer) -> None:
    domain = _added(cast)
    api = key_client(cast.tenant, role="viewer").client
    assert api.get(f"/api/v1/domains/{domain.pk}").status_code == 200
    assert_error(api.post("/api/v1/domains", {"name": "other.test"}), 403)
    assert_error(api.post(f"/api/v1/domains/{domain.pk}/verify"), 403)
    assert_error(api.delete(f"/api/v1/domains/{domain.pk}"), 403)
    assert domain_in(cast.tenant, "other.test") is None
    assert _status(cast) == DomainStatus.PENDING


def test_it_refuses_a_domain_beyond_the_plan_limit(cast: Cast) -> None:
    plan = default_plan()
    TenantPlan.objects.update_or_create(tenant=cast.tenant, defaults={"plan": plan})
    allowed = plan.parsed_limits.sending_domains
    for n in range(allowed):
        _added(cast, f"d{n}.test")
    api = key_client(cast.tenant, role="admin").client
    error = assert_error(api.post("/api/v1/domains", {"name": "one-more.test"}), 402)
    assert "sending domain" in error["message"] and plan.name in error["message"]
    page = client_for(cast.owner, cast.tenant).post("/domains/add/", {"name": "one-more.test"})
    assert page.status_code == 402
    assert domain_in(cast.tenant, "one-more.test") is None


# --- command -------------------------------------------------------------------------------------
def test_it_verifies_from_the_command_with_an_exit_status(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    _added(cast)
    out = StringIO()
    with pytest.raises(CommandError, match="not verified"):
        call_command("domains", "verify", "acme", DOMAIN, stdout=out)  # nothing published yet
    assert "missing   TXT   _dmarc.acme-mail.test" in out.getvalue()
    run_jobs()  # publish (and its check)
    out = StringIO()
    call_command("domains", "verify", "acme", DOMAIN, stdout=out)
    assert f"{DOMAIN} is verified." in out.getvalue()
    listed = StringIO()
    call_command("domains", "list", "acme", "--json", stdout=listed)
    assert [(d["name"], d["status"]) for d in json.loads(listed.getvalue())] == [
        (DOMAIN, "verified")
    ]
    with pytest.raises(CommandError, match="no domain"):
        call_command("domains", "verify", "acme", "unknown.test")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("domains", "list", "nope")
    # The outsider's tenant has no such domain.
    with pytest.raises(CommandError, match="no domain"):
        call_command("domains", "verify", "globex", DOMAIN)
