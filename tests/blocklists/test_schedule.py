"""The scheduled path: beat's jobs find due IPs and tenants' verified domains, the check jobs run
in the queue runner (as workers run them) against the sandbox DNS server."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import DomainStatus, SendingDomain
from infrastructure.models import IpStatus
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from penguinmails.sandbox.dns import SandboxDnsServer, stage_blocklisting
from reputation.jobs import DOMAINS_DUE_TASK, IPS_DUE_TASK
from reputation.models import BlocklistCheck, Listing
from reputation.services import blocklists
from reputation.services.blocklists_dns import query_name
from tests.blocklists.conftest import make_ip
from tests.conftest import Cast

# The queue runner works in autocommit, as a worker does (emails go out after commit).
pytestmark = pytest.mark.django_db(transaction=True)

READY = [JobStatus.QUEUED, JobStatus.ENQUEUED, JobStatus.RETRYING]


def _run_all(task: str) -> list[Job]:
    runner.run(Job.objects.create(task=task, payload={}).pk, worker_id="test")
    ran = []
    for _ in range(20):
        job = Job.objects.filter(status__in=READY).order_by("id").first()
        if job is None:
            break
        runner.run(job.pk, worker_id="test")
        job.refresh_from_db()
        ran.append(job)
        connection.set_schema_to_public()
    return ran


def test_the_due_ips_are_checked_and_a_listed_one_quarantined(
    cast: Cast, dnsbl: SandboxDnsServer
) -> None:
    ip = make_ip(cast.tenant, "127.0.0.120")
    stage_blocklisting(dnsbl.store, "127.0.0.120", zone="b.barracudacentral.org")
    mail.outbox.clear()

    ran = _run_all(IPS_DUE_TASK)

    (check_job,) = [j for j in ran if j.task == "reputation.check_ips"]
    assert check_job.status == JobStatus.COMPLETED
    ip.refresh_from_db()
    assert ip.status == IpStatus.QUARANTINED
    assert any("owner@acme.test" in m.to for m in mail.outbox)
    check = BlocklistCheck.objects.get(subject="127.0.0.120")
    # The next check is jittered around BLOCKLIST_LISTED_RECHECK_HOURS (listed: sooner).
    assert timezone.now() < check.next_check_at < timezone.now() + timezone.timedelta(hours=6)
    # Not due again right away: the next tick enqueues nothing for it.
    assert "127.0.0.120" not in blocklists.due_ips()


def test_a_verified_domain_listing_is_recorded_in_the_tenant_and_moves_nothing(
    cast: Cast, dnsbl: SandboxDnsServer, settings: Any
) -> None:
    with schema_context(cast.tenant.schema_name):
        SendingDomain.objects.create(
            name="listed-domain.example", tracking_host="t.listed-domain.example",
            dkim_selector="dkim", dkim_public_key="x", dkim_private_key="y",
            dmarc_rua="d@listed-domain.example", status=DomainStatus.VERIFIED,
        )  # fmt: skip
    stage_blocklisting(dnsbl.store, "listed-domain.example", zone="multi.surbl.org")
    mail.outbox.clear()

    ran = _run_all(DOMAINS_DUE_TASK)

    checks = [j for j in ran if j.task == "reputation.check_domains"]
    assert {j.tenant_id for j in checks} >= {cast.tenant.pk, cast.other_tenant.pk}
    assert all(j.status == JobStatus.COMPLETED for j in checks)
    (listing,) = blocklists.current_listings(domain="listed-domain.example", tenant=cast.tenant)
    assert listing.zone == "multi.surbl.org" and listing.tenant_id == cast.tenant.pk
    # Per tenant: nothing of it in public or in the other tenant.
    assert not Listing.objects.filter(subject="listed-domain.example").exists()
    assert blocklists.tenant_listings(cast.other_tenant) == []
    assert any("listed-domain.example" in m.subject for m in mail.outbox)


def test_query_names_follow_rfc_5782() -> None:
    assert query_name("192.0.2.99", "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"
    v6 = query_name("2001:db8::1", "zen.spamhaus.org")
    assert v6.startswith("1.0.0.0.0.0.0.0.") and v6.endswith(".8.b.d.0.1.0.0.2.zen.spamhaus.org")
    assert len(v6.split(".")) == 32 + 3
    assert query_name("Example.COM.", "dbl.spamhaus.org") == "example.com.dbl.spamhaus.org"
