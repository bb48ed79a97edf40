from __future__ import annotations

import pytest

from campaigns.models import EmailTemplate

pytestmark = pytest.mark.django_db


def test_it_stores_a_template_in_the_tenant_schema(cast):
    from django_tenants.utils import schema_context

    with schema_context(cast.tenant.schema_name):
        _store()


def _store() -> None:
    EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi</p>")
    assert EmailTemplate.objects.filter(name="Intro").count() == 1
