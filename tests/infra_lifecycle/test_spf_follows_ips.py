"""Once a tenant's servers are provisioned, its sending domains' SPF lists its own IPs, and each
IP's expected PTR is the reverse name provisioning set for it (its server's host name)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from deliverability.dns.records import reverse_name
from deliverability.models import DomainRecord
from deliverability.services.domains import add_domain
from infrastructure.models import IpAddress
from infrastructure.providers.local import LocalProvider
from infrastructure.services.ips import sending_ips
from infrastructure.services.provisioning import provision_infrastructure
from tenants.services.access import active_membership, principal_for_membership
from tests.conftest import Cast
from tests.infra_lifecycle.conftest import run_jobs, set_plan

# The queue runner works in autocommit, as a worker does.
pytestmark = pytest.mark.django_db(transaction=True)


def _records_of_new_domain(cast: Cast, name: str) -> list[DomainRecord]:
    membership = active_membership(cast.owner, cast.tenant)
    assert membership is not None
    with schema_context(cast.tenant.schema_name):
        domain = add_domain(principal_for_membership(membership), name=name)
        records = list(DomainRecord.objects.filter(domain_id=domain.pk))
    connection.set_schema_to_public()
    return records


def test_it_lists_the_tenants_own_ips_in_spf_once_provisioned(
    cast: Cast, local_vps: LocalProvider, settings: Any
) -> None:
    # Only records are checked here: a domain check that slips in must fail fast, not wait on
    # a resolver nobody runs.
    settings.DNS_TIMEOUT = 0.2
    # (Without IPs SPF falls back to the platform's include: tests/domains covers that.)
    set_plan(cast.tenant, "scale")
    provision_infrastructure(cast.tenant, actor=cast.owner)
    run_jobs()
    ips = sending_ips(cast.tenant)
    assert ips

    records = _records_of_new_domain(cast, "after-servers.example")
    (spf,) = [r.value for r in records if r.purpose == "spf"]
    for ip in ips:
        assert f"ip4:{ip}" in spf
    # PTR from one source: what infrastructure set at the provider, i.e. the server's host name
    # (two servers here, so two different names), never the platform's shared mail host.
    ptrs = {r.name: r.value for r in records if r.purpose == "ptr"}
    set_at_provider = {
        reverse_name(ip.address): ip.ptr_hostname
        for ip in IpAddress.objects.filter(tenant=cast.tenant, ptr_set=True)
    }
    assert ptrs == set_at_provider
    assert ptrs == {reverse_name(ip): local_vps.reverse_dns(ip) for ip in ips}
    assert len(set(ptrs.values())) == 2 and settings.SENDING_MAIL_HOST not in ptrs.values()
