"""/health/email answers anyone, on any host (a tenant's too), before authentication: it must not
name the platform's or a tenant's mail servers to an anonymous caller.

Found by the R1 review; penguinmails/health.py was another helper's (O1) to change, so this is
reported and marked xfail (strict: it flips to a failure once fixed, to drop the mark).
"""

from __future__ import annotations

import pytest
from django.test import Client

from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from tests.conftest import Cast, host_of


@pytest.mark.django_db(transaction=True)
def test_health_email_names_no_mail_server_to_an_anonymous_caller(cast: Cast) -> None:
    MailServer.objects.create(
        tenant=cast.tenant, kind=MailServerKind.SANDBOX, hostname="mx.zqacme-private.test",
        smtp_host="127.0.0.1", smtp_port=9, status=MailServerStatus.ACTIVE,
    )  # fmt: skip
    body = Client(HTTP_HOST=host_of(cast.other_tenant)).get("/health/email").content.decode()
    assert "zqacme" not in body
