"""A tenant with one server carrying two sending IPs (the local provider, as under `make run`),
helpers to add domains and run the render job, and the real Postfix tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.entitlements import default_plan
from billing.models import Plan, TenantPlan
from deliverability.models import SendingDomain
from deliverability.services.domains import add_domain, remove_domain
from infrastructure.models import IpAddress, PostfixOverrides, VpsInstance
from infrastructure.postfix import RENDER_TASK
from infrastructure.providers.local import LocalProvider
from infrastructure.services.provisioning import provision_infrastructure
from penguinmails.models import Job
from penguinmails.queue import runner
from tenants.models import Tenant
from tenants.services.access import Principal, active_membership, principal_for_membership
from tests.conftest import Cast
from tests.infra_lifecycle.conftest import READY, local_vps, run_jobs
from tests.ip_binding.postfix_tools import PostfixTools, find_tools

__all__ = ["local_vps"]


@pytest.fixture(scope="session")
def postfix(tmp_path_factory: pytest.TempPathFactory) -> PostfixTools:
    found = find_tools(tmp_path_factory.mktemp("postfix"))
    if isinstance(found, str):
        pytest.skip(f"Postfix tools unavailable: {found}; the structural checks still run")
    return found


def principal(cast: Cast, tenant: Tenant | None = None) -> Principal:
    membership = active_membership(cast.owner, tenant or cast.tenant)
    assert membership is not None
    return principal_for_membership(membership)


def two_ip_server(tenant: Tenant, *, actor: Any, ips: int = 2) -> VpsInstance:
    """One server with its main IP and secondaries (two IPs in all unless asked), provisioned
    through the jobs."""
    default_plan()
    starter = Plan.objects.get(slug="starter")
    plan, _ = Plan.objects.update_or_create(
        slug="ip-binding-test",
        defaults={
            "name": "Two IPs",
            "monthly_price": starter.monthly_price,
            "is_public": False,
            "limits": {
                **starter.limits,
                "vps_count": 1,
                "dedicated_ips": ips,
                "sending_domains": 10,
            },
        },
    )
    TenantPlan.objects.update_or_create(tenant=tenant, defaults={"plan": plan})
    (vps,) = provision_infrastructure(tenant, actor=actor)
    run_jobs()
    vps.refresh_from_db()
    assert IpAddress.objects.filter(vps=vps, address__isnull=False).count() == ips
    return vps


def add_domains(cast: Cast, *names: str) -> None:
    with schema_context(cast.tenant.schema_name):
        for name in names:
            add_domain(principal(cast), name=name)
    connection.set_schema_to_public()


def drop_domain(cast: Cast, name: str) -> None:
    with schema_context(cast.tenant.schema_name):
        remove_domain(principal(cast), SendingDomain.objects.get(name=name))
    connection.set_schema_to_public()


def render(vps: VpsInstance) -> dict[str, str]:
    """Run the pending render jobs (only those: domain checks are another suite's business)
    and return the server's stored files."""
    for _ in range(10):
        job = Job.objects.filter(task=RENDER_TASK, status__in=READY).order_by("id").first()
        if job is None:
            break
        Job.objects.filter(pk=job.pk).update(run_at=timezone.now())
        runner.run(job.pk, worker_id="test-worker")
    return dict(PostfixOverrides.objects.get(vps=vps).files)


def write_overrides(files: dict[str, str], where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (where / name).write_text(content)
    return where


def apply_like_mailu(tools: PostfixTools, files: dict[str, str], where: Path) -> Path:
    """A Postfix config dir with the overrides applied the way Mailu's start.py applies them:
    `postconf -e LINE` per postfix.cf line, `postconf -Me LINE` per postfix.master line. The
    container path /overrides is mapped to a local copy of the files."""
    overrides = write_overrides(files, where / "overrides")
    config = tools.config_dir(where / "etc")
    for line in files["postfix.cf"].splitlines():
        if line.strip():
            tools.run(
                "postconf", "-c", str(config), "-e", line.replace("/overrides/", f"{overrides}/")
            )
    for line in files["postfix.master"].splitlines():
        if line.strip():
            tools.run("postconf", "-c", str(config), "-Me", line)
    return config


@pytest.fixture
def quick_dns(settings: Any, local_vps: LocalProvider) -> LocalProvider:
    settings.DNS_TIMEOUT = 0.2
    return local_vps
