"""`manage.py tenants ...`: through call_command, and exit codes from a real process."""

from __future__ import annotations

import io
import json
import re
import subprocess

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_tenants.utils import schema_exists
from pytest_django.fixtures import Settings as SettingsWrapper

from tenants.models import ApiKey, AuditEvent, Domain, Membership, Tenant, TenantStatus, User
from tenants.services.apikeys import authenticate_api_key
from tests.conftest import PASSWORD, Cast
from tests.ops.conftest import MANAGE, PYTHON, ROOT, subprocess_env, the_test_database_url


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


def password_in(output: str) -> str:
    match = re.search(r"^Password:\s+(\S+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


# --- create -----------------------------------------------------------------------------------


def test_it_creates_a_tenant_and_a_new_owner_with_a_one_time_password(cast: Cast) -> None:
    output = run(
        "create", "--name", "New Co", "--slug", "newco", "--owner", "Boss@NewCo.example.com"
    )
    tenant = Tenant.objects.get(slug="newco")
    assert tenant.name == "New Co"
    assert schema_exists(tenant.schema_name)
    assert Domain.objects.filter(tenant=tenant, domain="newco.localhost", is_primary=True).exists()
    assert "http://newco.localhost:8000/" in output
    owner = User.objects.get(email="boss@newco.example.com")
    membership = Membership.objects.get(tenant=tenant, user=owner)
    assert membership.is_owner
    assert authenticate(None, email="boss@newco.example.com", password=password_in(output)) == owner


def test_it_makes_an_existing_user_owner_without_touching_their_password(cast: Cast) -> None:
    output = run("create", "--name", "Side", "--slug", "side-project", "--owner", cast.viewer.email)
    assert "existing user, made owner" in output
    assert "Password:" not in output
    tenant = Tenant.objects.get(slug="side-project")
    assert Membership.objects.get(tenant=tenant, user=cast.viewer).is_owner
    assert authenticate(None, email=cast.viewer.email, password=PASSWORD) == cast.viewer


@pytest.mark.parametrize(
    ("slug", "owner", "expected"),
    [
        ("www", "new@example.com", "slug: 'www' is reserved."),
        ("acme", "new@example.com", "slug: 'acme' is already taken."),
        ("Bad_Slug!", "new@example.com", "slug: Use 3 to 40 lowercase letters"),
        ("fine-slug", "not-an-email", "owner: "),
    ],
)
def test_it_refuses_bad_input_and_creates_nothing(
    cast: Cast, slug: str, owner: str, expected: str
) -> None:
    tenants_before = Tenant.objects.count()
    with pytest.raises(CommandError) as refused:
        run("create", "--name", "Whatever", "--slug", slug, "--owner", owner)
    assert expected in str(refused.value)
    assert Tenant.objects.count() == tenants_before
    # Atomic: the owner that would have been created for the tenant is not left behind.
    assert not User.objects.filter(email="new@example.com").exists()


def test_it_refuses_an_empty_name(cast: Cast) -> None:
    with pytest.raises(CommandError, match="name: Required."):
        run("create", "--name", "  ", "--slug", "nameless", "--owner", "n@example.com")
    assert not User.objects.filter(email="n@example.com").exists()


# --- list -------------------------------------------------------------------------------------


def test_it_lists_tenants_as_a_table_and_as_json(cast: Cast) -> None:
    table = run("list")
    assert table.splitlines()[0].split() == ["SLUG", "NAME", "STATUS", "MEMBERS", "HOST", "CREATED"]
    assert "acme.localhost" in table
    assert "_template" not in table

    rows = {r["slug"]: r for r in json.loads(run("list", "--json"))}
    assert set(rows) >= {"acme", "globex"}
    assert "_template" not in rows
    assert rows["acme"]["members"] == 4
    assert rows["acme"]["status"] == "active"
    assert rows["acme"]["host"] == "acme.localhost"
    assert rows["acme"]["name"] == "Acme Agency"
    assert rows["acme"]["created"].startswith(str(cast.tenant.created_at.year))


def test_it_filters_the_list_by_status(cast: Cast) -> None:
    run("suspend", "globex", "--reason", "unpaid")
    suspended = [r["slug"] for r in json.loads(run("list", "--json", "--status", "suspended"))]
    active = [r["slug"] for r in json.loads(run("list", "--json", "--status", "active"))]
    assert suspended == ["globex"]
    assert "acme" in active and "globex" not in active


# --- suspend / reactivate ---------------------------------------------------------------------


def test_it_suspends_and_reactivates_with_an_audit_trail(cast: Cast) -> None:
    assert "Suspended acme." in run("suspend", "acme", "--reason", "Payment overdue")
    cast.tenant.refresh_from_db()
    assert cast.tenant.status == TenantStatus.SUSPENDED
    assert cast.tenant.suspended_reason == "Payment overdue"
    assert "Reactivated acme." in run("reactivate", "acme")
    cast.tenant.refresh_from_db()
    assert cast.tenant.status == TenantStatus.ACTIVE
    changes = AuditEvent.objects.filter(tenant=cast.tenant, action="tenant.status_changed")
    assert [e.detail["to"] for e in changes.order_by("created_at", "pk")] == ["suspended", "active"]


def test_it_refuses_illegal_transitions_and_unknown_slugs(cast: Cast) -> None:
    with pytest.raises(CommandError, match="is active; cannot become active"):
        run("reactivate", "acme")
    run("suspend", "acme")
    with pytest.raises(CommandError, match="is suspended; cannot become suspended"):
        run("suspend", "acme")
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        run("suspend", "nope")
    with pytest.raises(CommandError, match="No tenant with slug '_template'"):
        run("suspend", "_template")


# --- apikey -----------------------------------------------------------------------------------


def test_it_prints_a_new_api_key_once_and_stores_it_hashed(cast: Cast) -> None:
    output = run("apikey", "acme", "--name", "CI deploy", "--role", "admin")
    [plaintext] = [line for line in output.splitlines() if line.startswith("pm_")]
    key = authenticate_api_key(plaintext)
    assert key is not None
    assert key.tenant == cast.tenant
    assert key.role.slug == "admin"
    assert key.name == "CI deploy"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_apikey WHERE key_hash = %s", [plaintext])
        assert cursor.fetchone()[0] == 0
    assert plaintext not in json.dumps(list(ApiKey.objects.values()), default=str)


def test_it_defaults_api_keys_to_the_member_role(cast: Cast) -> None:
    output = run("apikey", "acme", "--name", "reporting")
    assert "(role member)" in output


def test_it_refuses_unknown_or_owner_roles_for_api_keys(cast: Cast) -> None:
    with pytest.raises(CommandError, match="Unknown role 'wizard'"):
        run("apikey", "acme", "--name", "x", "--role", "wizard")
    with pytest.raises(CommandError, match="owner role"):
        run("apikey", "acme", "--name", "x", "--role", "owner")
    with pytest.raises(CommandError, match="No tenant with slug"):
        run("apikey", "nope", "--name", "x")
    assert not ApiKey.objects.filter(name="x").exists()


# --- prepare-template and demo ----------------------------------------------------------------


def test_it_prepares_the_template_idempotently(cast: Cast) -> None:
    first = run("prepare-template")
    second = run("prepare-template")
    assert "tenant_template is ready" in first and first == second
    assert Tenant.objects.filter(is_template=True).count() == 1


def test_it_refuses_demo_unless_debug(cast: Cast, settings: SettingsWrapper) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        run("demo")
    assert not Tenant.objects.filter(slug="demo").exists()


# --- a real process: exit codes ---------------------------------------------------------------


def test_it_exits_non_zero_with_a_reason_from_the_command_line(cast: Cast) -> None:
    env = subprocess_env(DATABASE_URL=the_test_database_url())
    missing = subprocess.run(
        [PYTHON, MANAGE, "tenants", "create", "--name", "X", "--owner", "a@example.com"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "the following arguments are required: --slug" in missing.stderr

    unknown = subprocess.run(
        [PYTHON, MANAGE, "tenants", "suspend", "no-such-tenant"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "No tenant with slug 'no-such-tenant'." in unknown.stderr

    reserved = subprocess.run(
        [PYTHON, MANAGE, "tenants", "create", "--name", "X", "--slug", "admin",
         "--owner", "a@example.com"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert reserved.returncode == 1
    assert "slug: 'admin' is reserved." in reserved.stderr
