"""Creating mailboxes on the tenant's own mail server: Mailu (through its admin API, the local
fake) and the sandbox; the plan limit; the domain must be the tenant's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing.entitlements import LimitReached, limits_for
from deliverability.models import MailboxStatus
from deliverability.services import mailboxes as svc
from deliverability.services.domains import add_domain
from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from penguinmails.errors import ValidationFailed
from penguinmails.models import Job, JobStatus
from tests.conftest import Cast
from tests.domains.conftest import principal, run_jobs
from tests.fakes.mailu import FakeMailu
from tests.mailboxes.conftest import mailbox_in, mailboxes_in

pytestmark = pytest.mark.django_db(transaction=True)

DOMAIN = "acme-mail.test"


@pytest.fixture
def mailu() -> Iterator[FakeMailu]:
    fake = FakeMailu().start()
    yield fake
    fake.stop()


def mailu_server(cast: Cast, fake: FakeMailu, token: str | None = None) -> MailServer:
    connection.set_schema_to_public()
    return MailServer.objects.create(
        tenant=cast.tenant,
        kind=MailServerKind.MAILU,
        hostname=fake.hostname,
        api_url=fake.url,
        api_token=token or fake.token,
        smtp_host=fake.hostname,
        smtp_port=465,
        imap_host=fake.hostname,
        imap_port=993,
        status=MailServerStatus.ACTIVE,
    )


def with_domain(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        add_domain(principal(cast.tenant, cast.owner), name=DOMAIN)
    Job.objects.all().delete()  # the publish job is the domains' business, not ours


def create(cast: Cast, local_part: str = "sales", **extra: Any) -> Any:
    with schema_context(cast.tenant.schema_name):
        return svc.create_mailbox(
            principal(cast.tenant, cast.admin), local_part=local_part, domain=DOMAIN, **extra
        )


def test_it_creates_a_mailbox_on_mailu_with_a_generated_password(
    cast: Cast, mailu: FakeMailu
) -> None:
    mailu_server(cast, mailu)
    with_domain(cast)
    mailbox = create(cast, "Sales", display_name="Sales Team")
    assert mailbox.status == MailboxStatus.PENDING and mailbox.address == f"sales@{DOMAIN}"
    ran = run_jobs()
    assert [j.status for j in ran] == [JobStatus.COMPLETED]
    stored = mailbox_in(cast.tenant, f"sales@{DOMAIN}")
    assert stored.status == MailboxStatus.ACTIVE
    assert (stored.smtp_security, stored.imap_security) == ("ssl", "ssl")
    password = stored.smtp_password.reveal()
    assert len(password) >= 24
    assert mailu.users[f"sales@{DOMAIN}"]["raw_password"] == password
    assert mailu.users[f"sales@{DOMAIN}"]["displayed_name"] == "Sales Team"
    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password FROM deliverability_mailbox")
        assert password not in cursor.fetchone()[0]


def test_it_marks_the_mailbox_failing_without_retrying_when_mailu_refuses_the_token(
    cast: Cast, mailu: FakeMailu
) -> None:
    mailu_server(cast, mailu, token="wrong-token")
    with_domain(cast)
    create(cast)
    ran = run_jobs()
    assert [j.status for j in ran] == [JobStatus.COMPLETED]  # settled, not retried
    assert mailu.bad_tokens == 1
    stored = mailbox_in(cast.tenant, f"sales@{DOMAIN}")
    assert stored.status == MailboxStatus.FAILING
    assert "API token" in stored.status_reason and stored.last_error_step == "provision"


def test_it_refuses_a_domain_that_is_not_the_tenants(cast: Cast, mailu: FakeMailu) -> None:
    mailu_server(cast, mailu)
    with pytest.raises(ValidationFailed) as caught:
        create(cast)
    assert "domain" in caught.value.fields
    assert mailboxes_in(cast.tenant) == [] and not Job.objects.exists()


def test_it_refuses_a_mailbox_beyond_the_plan_limit_and_creates_nothing(
    cast: Cast, mailu: FakeMailu
) -> None:
    mailu_server(cast, mailu)
    with_domain(cast)
    allowed = limits_for(cast.tenant).count("mailboxes")
    for n in range(allowed):
        create(cast, f"box{n}")
    Job.objects.all().delete()
    with pytest.raises(LimitReached) as caught:
        create(cast, "one-too-many")
    assert "mailbox" in caught.value.message and "Upgrade" in caught.value.message
    assert len(mailboxes_in(cast.tenant)) == allowed and not Job.objects.exists()


def test_it_creates_a_sandbox_mailbox_the_sandbox_smtp_accepts(
    cast: Cast, settings: Any, smtp_server: Any
) -> None:
    from tests.mailboxes.conftest import PASSWORD, USER

    settings.SANDBOX_SMTP_USER, settings.SANDBOX_SMTP_PASSWORD = USER, PASSWORD
    connection.set_schema_to_public()
    MailServer.objects.create(
        tenant=cast.tenant,
        kind=MailServerKind.SANDBOX,
        hostname="sandbox.localhost",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        status=MailServerStatus.ACTIVE,
    )
    with_domain(cast)
    create(cast)
    run_jobs()
    stored = mailbox_in(cast.tenant, f"sales@{DOMAIN}")
    assert stored.status == MailboxStatus.ACTIVE and stored.imap_host == ""
    with schema_context(cast.tenant.schema_name):
        report = svc.test_mailbox(principal(cast.tenant, cast.admin), stored)
    assert report.ok and report.imap is None
