"""Creating tenants: the schema is a faithful copy of the template, and failures leave nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_exists

from penguinmails.errors import ValidationFailed
from tenants.models import Tenant, User
from tenants.services.tenancy import create_tenant
from tests.conftest import Cast


def _catalog(schema: str) -> dict[str, list[tuple[str, ...]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(is_identity, '') "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
            [schema],
        )
        columns = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(
            "SELECT tablename, replace(indexdef, %s, 'S') FROM pg_indexes "
            "WHERE schemaname = %s ORDER BY 1, 2",
            [f"{schema}.", schema],
        )
        indexes = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(
            # A foreign key to a table of the same schema prints qualified by that schema.
            "SELECT c.relname, k.contype, replace(pg_get_constraintdef(k.oid), %s, 'S') "
            "FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace "
            "ORDER BY 1, 2, 3",
            [f"{schema}.", schema],
        )
        constraints = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(
            f'SELECT app, name FROM "{schema}".django_migrations ORDER BY 1, 2'  # noqa: S608
        )
        migrations = [tuple(r) for r in cursor.fetchall()]
    return {
        "columns": columns, "indexes": indexes, "constraints": constraints,
        "migrations": migrations,
    }  # fmt: skip


def test_it_builds_a_schema_identical_to_the_template(cast: Cast) -> None:
    owner = User.objects.create_user("clone@acme.example", "x-long-password-1")
    tenant = create_tenant(name="Clone Check", slug="clone-check", owner=owner)
    assert _catalog(tenant.schema_name) == _catalog(settings.TENANT_TEMPLATE_SCHEMA)


def test_it_gives_each_clone_its_own_id_sequences(cast: Cast) -> None:
    owner = User.objects.create_user("seq@acme.example", "x-long-password-1")
    tenant = create_tenant(name="Seq Check", slug="seq-check", owner=owner)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{tenant.schema_name}".django_content_type (app_label, model) '  # noqa: S608
            "VALUES ('probe', 'probe') RETURNING id"
        )
        new_id = cursor.fetchone()[0]
        cursor.execute(
            f'SELECT max(id) FROM "{settings.TENANT_TEMPLATE_SCHEMA}".django_content_type'  # noqa: S608
        )
        assert new_id > cursor.fetchone()[0]


def test_it_leaves_no_schema_behind_when_creation_fails(cast: Cast) -> None:
    owner = User.objects.create_user("fail@acme.example", "x-long-password-1")
    with pytest.raises(ValidationFailed):
        with transaction.atomic():
            create_tenant(name="Doomed", slug="doomed-one", owner=owner)
            # A later step of the same operation fails: the clone must roll back with it.
            create_tenant(name="Doomed again", slug="doomed-one", owner=owner)
    assert not Tenant.objects.filter(slug="doomed-one").exists()
    assert not schema_exists("t_doomed_one")
