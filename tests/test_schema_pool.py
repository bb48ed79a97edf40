"""Spare tenant schemas (tenants/services/schema_pool.py): creating a tenant renames a spare
cloned ahead of time, only while it is current, and the pool is topped up by the command/job."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_exists

from penguinmails.errors import ValidationFailed
from penguinmails.models import Job
from penguinmails.queue.registry import JobContext, get_handler
from tenants.models import User
from tenants.services.schema_pool import FILL_TASK, SPARE_PREFIX, fill_spares
from tenants.services.tenancy import create_tenant
from tests.conftest import Cast
from tests.test_tenancy import _catalog


def _spares() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY 1",
            [SPARE_PREFIX],
        )
        return [r[0] for r in cursor.fetchall()]


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch, cast: Cast) -> list[str]:
    monkeypatch.setenv("TENANT_SPARE_SCHEMAS", "2")
    call_command("tenants", "prepare-template", verbosity=0)
    return _spares()


def test_prepare_template_fills_the_pool_and_a_tenant_takes_a_spare(pool: list[str]) -> None:
    assert len(pool) == 2
    owner = User.objects.create_user("pool@acme.example", "x-long-password-1")
    tenant = create_tenant(name="Pooled", slug="pooled", owner=owner)
    left = _spares()
    assert len(left) == 1 and left[0] in pool
    assert _catalog(tenant.schema_name) == _catalog(settings.TENANT_TEMPLATE_SCHEMA)
    assert fill_spares() == (1, 0)
    assert len(_spares()) == 2


def test_a_stale_spare_is_never_taken_and_the_next_fill_replaces_it(pool: list[str]) -> None:
    with connection.cursor() as cursor:
        for spare in pool:  # as if cloned before a deploy's new migration
            sql = f'DELETE FROM "{spare}".django_migrations WHERE app = %s'  # noqa: S608
            cursor.execute(sql, ["campaigns"])
    owner = User.objects.create_user("stale@acme.example", "x-long-password-1")
    tenant = create_tenant(name="Fresh", slug="fresh-one", owner=owner)
    assert _spares() == pool  # cloned instead
    assert _catalog(tenant.schema_name) == _catalog(settings.TENANT_TEMPLATE_SCHEMA)
    assert fill_spares() == (2, 2)
    assert not set(_spares()) & set(pool)


def test_a_failed_creation_gives_the_spare_back(pool: list[str]) -> None:
    owner = User.objects.create_user("fail@acme.example", "x-long-password-1")
    with pytest.raises(ValidationFailed):
        with transaction.atomic():
            create_tenant(name="Doomed", slug="doomed-two", owner=owner)
            create_tenant(name="Doomed again", slug="doomed-two", owner=owner)
    assert _spares() == pool
    assert not schema_exists("t_doomed_two")


def test_without_the_setting_there_is_no_pool(cast: Cast) -> None:
    call_command("tenants", "prepare-template", verbosity=0)
    assert _spares() == []
    owner = User.objects.create_user("plain@acme.example", "x-long-password-1")
    tenant = create_tenant(name="Plain", slug="plain-one", owner=owner)
    assert _catalog(tenant.schema_name) == _catalog(settings.TENANT_TEMPLATE_SCHEMA)


def test_a_creation_asks_for_a_refill_and_the_job_restocks_the_pool(
    pool: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    owner = User.objects.create_user("refill@acme.example", "x-long-password-1")
    with django_capture_on_commit_callbacks(execute=True):
        create_tenant(name="Refill", slug="refill-one", owner=owner)
    assert len(_spares()) == 1
    job = Job.objects.get(task=FILL_TASK)
    # The registered handler, as the runner calls it (the runner recycles the test's connection).
    context = JobContext(job.pk, 1, None, "public", "test:1", heartbeat=lambda: None)
    get_handler(job.task).func(job.payload, context)
    assert len(_spares()) == 2
