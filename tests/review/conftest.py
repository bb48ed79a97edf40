"""Rows in acme and globex for the review's probes (tests/routes.py's objects_of)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import Cast
from tests.routes import Objects, bump_sequences, objects_of


@pytest.fixture
def rows(cast: Cast) -> tuple[Objects, Objects]:
    bump_sequences(cast.tenant, 5_000_000)
    acme = objects_of(cast.tenant, cast.owner, cast.member, "zqacme")
    globex = objects_of(cast.other_tenant, cast.outsider, None, "zqglobex")
    connection.set_schema_to_public()
    return acme, globex
