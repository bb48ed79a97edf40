"""`.test` addresses (RFC 6761): leads while ALLOW_TEST_EMAIL_DOMAINS is on (the sandbox, where the
demo's domain is demo-agency.test), refused as special-use names when it is off (production).
The same answer from the fast path, email-validator, the import, the API and the dashboard."""

from __future__ import annotations

import random

import pytest
from django_tenants.utils import schema_context
from email_validator import EmailNotValidError, validate_email
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.models import LeadImportError, Suppression
from campaigns.services.lead_import import RowCleaner, _map_row
from campaigns.services.leads import clean_lead, normalize_email, plain_email
from tests.api.conftest import key_client
from tests.conftest import Cast, client_for
from tests.leads.conftest import csv_bytes, import_in, leads_in, run_jobs, upload
from tests.leads.test_email_fast_path import _address

SPECIAL_USE = "special-use or reserved name"


@pytest.fixture(params=[True, False], ids=["allowed", "refused"])
def allowed(request: pytest.FixtureRequest, settings: SettingsWrapper) -> bool:
    settings.ALLOW_TEST_EMAIL_DOMAINS = request.param
    return bool(request.param)


def test_it_accepts_test_addresses_only_while_the_setting_is_on(allowed: bool) -> None:
    if allowed:
        assert plain_email("Ann@Demo-Agency.test") == "ann@demo-agency.test"
        assert normalize_email(" Ann@Demo-Agency.TEST ") == "ann@demo-agency.test"
        assert normalize_email("José@Demo-Agency.test") == "josé@demo-agency.test"  # slow path
    else:
        assert plain_email("ann@demo-agency.test") is None
        with pytest.raises(ValueError, match=SPECIAL_USE):
            normalize_email("ann@demo-agency.test")
    # The other special-use names stay refused either way.
    for refused in ("ann@box.local", "ann@host.localhost", "ann@x.invalid", "ann@x.onion"):
        assert plain_email(refused) is None
        with pytest.raises(ValueError, match=SPECIAL_USE):
            normalize_email(refused)


def test_it_agrees_with_email_validator_on_the_fast_path(allowed: bool) -> None:
    rnd = random.Random(61)
    fast_test_hits = 0
    for _ in range(8000):
        raw = _address(rnd)
        fast = plain_email(raw)
        try:
            slow: str | None = validate_email(
                raw, check_deliverability=False, test_environment=allowed
            ).normalized.lower()
        except EmailNotValidError:
            slow = None
        if fast is not None:
            fast_test_hits += fast.endswith(".test")
            assert fast == slow, raw
    assert (fast_test_hits > 20) is allowed


def test_it_cleans_test_rows_alike_in_the_row_cleaner_and_clean_lead(allowed: bool) -> None:
    headers = ["Email", "First Name"]
    cleaner = RowCleaner(headers, {"Email": "email", "First Name": "first_name"})
    for address in ("ann@demo-agency.test", "Bob@Sub.Demo-Agency.TEST", "cy@test", "x@y.local"):
        cells = [address, "Ann"]
        got = cleaner(cells)
        data, _ = clean_lead(_map_row(dict(zip(headers, cells, strict=True)), cleaner.mapping))
        if data is None:
            assert isinstance(got, tuple), address
        else:
            assert isinstance(got, list) and got[0] == data.email, address
    assert isinstance(cleaner(["ann@demo-agency.test", ""]), list) is allowed


@pytest.mark.django_db(transaction=True)
def test_it_imports_test_addresses_only_while_the_setting_is_on(cast: Cast, allowed: bool) -> None:
    body = "email,first name\nann@demo-agency.test,Ann\nbob@example.com,Bob\n"
    lead_import = upload(cast, csv_bytes(body))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.created, done.failed) == ((2, 0) if allowed else (1, 1))
    assert ("ann@demo-agency.test" in leads_in(cast)) is allowed
    if not allowed:
        with schema_context(cast.tenant.schema_name):
            [error] = LeadImportError.objects.filter(lead_import_id=done.pk)
        assert (error.line, error.email) == (2, "ann@demo-agency.test")
        assert SPECIAL_USE in error.reason


@pytest.mark.django_db(transaction=True)
def test_it_creates_test_addresses_through_the_api_only_while_the_setting_is_on(
    cast: Cast, allowed: bool
) -> None:
    api = key_client(cast.tenant).client
    one = api.post("/api/v1/leads", {"email": "Ann@Demo-Agency.test"}, format="json")
    bulk = api.post(
        "/api/v1/leads/bulk", {"leads": [{"email": "bob@demo-agency.test"}]}, format="json"
    )
    if allowed:
        assert one.status_code == 201, one.content
        assert one.json()["email"] == "ann@demo-agency.test"
        assert bulk.status_code in (200, 201), bulk.content
        assert "bob@demo-agency.test" in leads_in(cast)
    else:
        assert one.status_code == 400
        assert SPECIAL_USE in one.content.decode()
        assert "bob@demo-agency.test" not in leads_in(cast)
    # The outsider's key on acme's host is refused whatever the address.
    outsider = key_client(cast.other_tenant, host=cast.tenant).client
    assert outsider.post("/api/v1/leads", {"email": "z@demo-agency.test"}).status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_it_suppresses_test_addresses_from_the_dashboard_only_while_allowed(
    cast: Cast, allowed: bool
) -> None:
    client = client_for(cast.owner, cast.tenant)
    response = client.post(
        "/campaigns/leads/suppressions/add/", {"values": "Ann@Demo-Agency.test"}, follow=True
    )
    with schema_context(cast.tenant.schema_name):
        values = list(Suppression.objects.values_list("value", flat=True))
    if allowed:
        assert values == ["ann@demo-agency.test"]
    else:
        assert values == []
        assert SPECIAL_USE in response.content.decode()
    # On acme's host the outsider is anonymous: nothing is added.
    outsider = client_for(cast.outsider, cast.tenant)
    refused = outsider.post("/campaigns/leads/suppressions/add/", {"values": "z@demo-agency.test"})
    assert refused.status_code == 302 and "/login/" in refused["Location"]
    with schema_context(cast.tenant.schema_name):
        assert not Suppression.objects.filter(value="z@demo-agency.test").exists()
