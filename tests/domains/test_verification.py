"""Adding, publishing and verifying domains against a real sandbox DNS server, through the job
queue's runner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.dns.records import dkim_key_bits, generate_dkim_keypair
from deliverability.models import DomainRecord, DomainStatus, RecordStatus, SendingDomain
from deliverability.services.domains import add_domain, verify_domain
from penguinmails import states
from penguinmails.models import Job, JobStatus
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord
from tenants.models import AuditEvent
from tests.conftest import Cast
from tests.domains.conftest import principal, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)

DOMAIN = "acme-mail.test"


def _add(cast: Cast, name: str = DOMAIN) -> SendingDomain:
    with schema_context(cast.tenant.schema_name):
        return add_domain(principal(cast.tenant, cast.owner), name=name)


def _records(domain: SendingDomain, tenant: object) -> dict[str, DomainRecord]:
    with schema_context(tenant.schema_name):  # type: ignore[attr-defined]
        return {r.purpose: r for r in DomainRecord.objects.filter(domain_id=domain.pk)}


def _reload(domain: SendingDomain, tenant: object) -> SendingDomain:
    with schema_context(tenant.schema_name):  # type: ignore[attr-defined]
        return SendingDomain.objects.get(pk=domain.pk)


def test_it_generates_every_record_on_add(cast: Cast, dns_server: SandboxDnsServer) -> None:
    domain = _add(cast, " Acme-Mail.TEST. ")
    assert domain.name == DOMAIN
    records = _records(domain, cast.tenant)
    assert set(records) == {"mx", "spf", "dkim", "dmarc", "dmarc_report_auth", "tracking"}
    assert records["mx"].value == "mail.localhost" and records["mx"].priority == 10
    assert records["spf"].value == "v=spf1 include:_spf.localhost ~all"
    assert records["dkim"].name == f"dkim._domainkey.{DOMAIN}"
    key = records["dkim"].value.split("p=")[1]
    assert dkim_key_bits(key) == 2048
    assert records["dmarc"].value == "v=DMARC1; p=none; rua=mailto:dmarc-reports@localhost"
    assert (records["tracking"].name, records["tracking"].value) == (
        f"track.{DOMAIN}",
        "track.localhost",
    )
    assert all(r.status == RecordStatus.NOT_CHECKED for r in records.values())
    # The private key is encrypted at rest and opens with the configured keys.
    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT dkim_private_key FROM deliverability_sendingdomain")
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored
    assert _reload(domain, cast.tenant).dkim_private_key.reveal().startswith("-----BEGIN PRIVATE")
    assert Job.objects.get(task="domains.publish").tenant_id == cast.tenant.pk
    assert AuditEvent.objects.filter(action="domain.added", tenant=cast.tenant).count() == 1


def test_it_publishes_to_the_sandbox_dns_and_verifies(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    domain = _add(cast)
    ran = run_jobs()
    assert [(j.task, j.status) for j in ran] == [
        ("domains.publish", JobStatus.COMPLETED),
        ("domains.verify", JobStatus.COMPLETED),
    ]
    assert all(j.tenant_id == cast.tenant.pk for j in ran)
    # Published for real: the sandbox server answers the DKIM record.
    assert dns_server.store.lookup(f"dkim._domainkey.{DOMAIN}", "TXT")
    domain = _reload(domain, cast.tenant)
    assert domain.status == DomainStatus.VERIFIED
    assert domain.verified_at is not None and domain.flagged_at is None
    records = _records(domain, cast.tenant)
    assert {p: r.status for p, r in records.items() if r.required} == {
        p: RecordStatus.OK for p in ("mx", "spf", "dkim", "dmarc", "tracking")
    }
    with schema_context(cast.tenant.schema_name):
        moves = [(t.from_status, t.to_status) for t in states.history(domain)]
    assert moves == [("pending", "verifying"), ("verifying", "verified")]
    # The next check is a job scheduled for later, in this tenant.
    scheduled = Job.objects.get(task="domains.verify", status=JobStatus.QUEUED)
    assert scheduled.tenant_id == cast.tenant.pk
    assert scheduled.run_at == domain.next_check_at
    assert scheduled.run_at > timezone.now() + timedelta(hours=5)


def test_it_reports_missing_and_wrong_records_with_what_was_found(
    cast: Cast, dns_server: SandboxDnsServer, settings: object
) -> None:
    settings.DNS_PROVIDER = "manual"  # type: ignore[attr-defined]  # the tenant publishes
    domain = _add(cast)
    records = _records(domain, cast.tenant)
    store = dns_server.store
    # The tenant added some records: MX right, SPF without our include, an old DKIM key.
    store.add(ZoneRecord.make(DOMAIN, "MX", "mail.localhost", priority=10))
    store.add(ZoneRecord.make(DOMAIN, "TXT", "v=spf1 include:_spf.google.com ~all"))
    old_key = generate_dkim_keypair().public_key_b64
    store.add(ZoneRecord.make(records["dkim"].name, "TXT", f"v=DKIM1; k=rsa; p={old_key}"))
    run_jobs()
    domain = _reload(domain, cast.tenant)
    assert domain.status == DomainStatus.UNVERIFIED
    records = _records(domain, cast.tenant)
    assert records["mx"].status == RecordStatus.OK
    assert records["spf"].status == RecordStatus.WRONG
    assert records["spf"].found == ["v=spf1 include:_spf.google.com ~all"]
    assert "include:_spf.localhost" in records["spf"].fix
    assert records["dkim"].status == RecordStatus.WRONG
    assert old_key in records["dkim"].found[0]
    assert records["dmarc"].status == RecordStatus.MISSING
    assert records["dmarc"].fix.startswith("No DMARC")
    assert records["tracking"].status == RecordStatus.MISSING


def test_it_flags_a_verified_domain_that_breaks_on_its_scheduled_check(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    domain = _add(cast)
    run_jobs()
    assert _reload(domain, cast.tenant).status == DomainStatus.VERIFIED
    dns_server.store.remove(f"_dmarc.{DOMAIN}", "TXT")
    scheduled = Job.objects.get(task="domains.verify", status=JobStatus.QUEUED)
    Job.objects.filter(pk=scheduled.pk).update(run_at=timezone.now())  # its time has come
    (ran, *_) = run_jobs()
    assert ran.pk == scheduled.pk and ran.status == JobStatus.COMPLETED
    domain = _reload(domain, cast.tenant)
    assert domain.status == DomainStatus.FAILING
    assert domain.flagged_at is not None
    assert _records(domain, cast.tenant)["dmarc"].status == RecordStatus.MISSING
    event = AuditEvent.objects.get(action="domain.failing", tenant=cast.tenant)
    assert "dmarc missing" in event.detail["problems"]
    # Fixed and re-checked: verified again, flag cleared.
    dns_server.store.add(
        ZoneRecord.make(f"_dmarc.{DOMAIN}", "TXT", _records(domain, cast.tenant)["dmarc"].value)
    )
    with schema_context(cast.tenant.schema_name):
        verify_domain(principal(cast.tenant, cast.owner), domain)
    run_jobs()
    domain = _reload(domain, cast.tenant)
    assert domain.status == DomainStatus.VERIFIED and domain.flagged_at is None
    with schema_context(cast.tenant.schema_name):
        moves = [(t.from_status, t.to_status) for t in states.history(domain)]
    assert moves[-3:] == [
        ("verified", "failing"),
        ("failing", "verifying"),
        ("verifying", "verified"),
    ]


def test_it_ignores_a_scheduled_check_superseded_by_a_newer_one(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    domain = _add(cast)
    run_jobs()
    old = Job.objects.get(task="domains.verify", status=JobStatus.QUEUED)
    with schema_context(cast.tenant.schema_name):
        verify_domain(principal(cast.tenant, cast.owner), domain)
    run_jobs()  # the manual check schedules its own successor
    after_manual = _reload(domain, cast.tenant)
    Job.objects.filter(pk=old.pk).update(run_at=timezone.now())
    (ran,) = run_jobs()
    assert ran.pk == old.pk and ran.status == JobStatus.COMPLETED
    assert _reload(domain, cast.tenant).last_checked_at == after_manual.last_checked_at
    assert Job.objects.filter(task="domains.verify", status=JobStatus.QUEUED).count() == 1
