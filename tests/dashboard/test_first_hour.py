"""A Starter workspace gets going without provisioning: mailboxes go on the platform's shared
mail server, the Infrastructure page explains instead of offering Provision (no 402 page), and
features that are not built (warm-up, blacklist monitoring) are not offered anywhere."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing.ladder import seed_ladder
from billing.models import Plan
from billing.services.plans import change_plan
from deliverability.models import Mailbox, MailboxStatus
from deliverability.services.domains import add_domain
from infrastructure.models import MailServer, MailServerKind, VpsInstance
from infrastructure.services.mailservers import mail_server_for
from penguinmails.models import Job
from tests.conftest import Cast, client_for
from tests.domains.conftest import principal, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)

DOMAIN = "acme-first.test"


def growth(cast: Cast) -> None:
    seed_ladder(Plan)  # a transactional test's flush took the seeded plans away
    change_plan(cast.tenant, plan=Plan.objects.get(slug="growth"), actor=None)


def with_domain(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        add_domain(principal(cast.tenant, cast.owner), name=DOMAIN)
    Job.objects.all().delete()  # the domain's publish job is not this test's business
    connection.set_schema_to_public()


def mailboxes_of(cast: Cast) -> list[Mailbox]:
    with schema_context(cast.tenant.schema_name):
        return list(Mailbox.objects.all())


def test_it_creates_a_starter_mailbox_on_the_shared_server(cast: Cast) -> None:
    with_domain(cast)
    client = client_for(cast.admin, cast.tenant)
    page = client.get("/mailboxes/").content.decode()
    assert "our shared mail servers" in page and 'id="create-form"' in page
    response = client.post("/mailboxes/create/", {"local_part": "sales", "domain": DOMAIN})
    assert response.status_code == 302
    run_jobs()
    (mailbox,) = mailboxes_of(cast)
    assert mailbox.status == MailboxStatus.ACTIVE
    server = MailServer.objects.get(pk=mailbox.mail_server_id)
    assert server.shared and server.tenant_id is None and server.kind == MailServerKind.SANDBOX
    assert not VpsInstance.objects.exists()
    # The shared server is the platform's: never listed as a tenant's own infrastructure.
    infra = client.get("/infrastructure/").content.decode()
    assert server.hostname not in infra


def test_it_shares_one_server_between_workspaces_but_not_their_mailboxes(cast: Cast) -> None:
    assert mail_server_for(cast.tenant) == mail_server_for(cast.other_tenant)
    assert MailServer.objects.filter(shared=True).count() == 1
    with_domain(cast)
    client_for(cast.owner, cast.tenant).post(
        "/mailboxes/create/", {"local_part": "sales", "domain": DOMAIN}
    )
    # The outsider neither sees acme's mailbox nor creates one on acme's domain.
    outsider = client_for(cast.outsider, cast.other_tenant)
    assert f"sales@{DOMAIN}" not in outsider.get("/mailboxes/").content.decode()
    refused = outsider.post("/mailboxes/create/", {"local_part": "x", "domain": DOMAIN})
    assert refused.status_code == 400
    across = client_for(cast.outsider, cast.tenant).post(
        "/mailboxes/create/", {"local_part": "y", "domain": DOMAIN}
    )
    assert across.status_code == 302 and across["Location"].startswith("/login/")
    assert [m.address for m in mailboxes_of(cast)] == [f"sales@{DOMAIN}"]


def test_it_keeps_a_plan_with_servers_on_its_own(cast: Cast) -> None:
    growth(cast)
    assert mail_server_for(cast.tenant) is None
    with_domain(cast)
    response = client_for(cast.owner, cast.tenant).post(
        "/mailboxes/create/", {"local_part": "sales", "domain": DOMAIN}
    )
    assert response.status_code == 409
    assert "provision one on the Infrastructure page" in response.content.decode()


def test_it_explains_shared_servers_instead_of_offering_provision(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    page = client.get("/infrastructure/").content.decode()
    assert 'id="shared-servers"' in page and "nothing to provision" in page
    assert 'id="provision"' not in page
    response = client.post("/infrastructure/provision/", follow=True)
    assert response.status_code == 200
    assert "includes no dedicated servers" in response.content.decode()
    assert not VpsInstance.objects.exists()
    outsider = client_for(cast.outsider, cast.tenant).post("/infrastructure/provision/")
    assert outsider.status_code == 302 and outsider["Location"].startswith("/login/")


def test_it_still_offers_provision_to_a_plan_with_servers(cast: Cast) -> None:
    growth(cast)
    page = client_for(cast.owner, cast.tenant).get("/infrastructure/").content.decode()
    assert 'id="provision"' in page and 'id="shared-servers"' not in page


def test_it_does_not_offer_warmup_or_blacklist_monitoring(cast: Cast) -> None:
    from django.test import Client

    landing = Client(HTTP_HOST="localhost").get("/").content.decode().lower()
    assert "warm" not in landing and "blacklist" not in landing
    client = client_for(cast.owner, cast.tenant)
    assert client.get("/warmup/").status_code == 404
    home = client.get("/").content.decode()
    assert "Warm-up" not in home and "/warmup/" not in home and "Not built yet" not in home
    billing = client.get("/billing/").content.decode().lower()
    assert "warm" not in billing and "blacklist" not in billing
    plans = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/plans").json()
    assert all("warmup" not in p["limits"] for p in plans)
    current = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/plan").json()
    assert "warmup" not in current["plan"]["limits"]
