"""Schemathesis over the whole OpenAPI document: no generated request gets a server error.

Every operation of `/api/v1/schema/` gets requests generated from its schema, valid ones
(positive) and invalid ones (negative), then valid ones again with the path's ids naming real rows
seeded first; all are sent to the Django WSGI application on a tenant's host with an admin API
key. Each answer must be below 500, and every refusal must be in the API's one error format. The
examples are derandomized (the same requests every run, so CI is not flaky) and bounded:
`API_FUZZ_EXAMPLES` per operation and pass (default 12: ~2,500 requests, about 75 s on two
cores). Raise it locally to search harder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tenants.models import ApiKey
from tests.api.conftest import key_client
from tests.conftest import Cast, host_of

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))
# Large bodies and long strings add time, not coverage of our code.
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Tally:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    bad_format: list[str] = field(default_factory=list)


@pytest.fixture
def wsgi_app(settings: Any) -> WSGIHandler:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"tenant": "1000000/min"},
    }
    return WSGIHandler()


@contextmanager
def _in_test_transaction() -> Iterator[None]:
    """Run a WSGI request inside the test's transaction, as Django's test client does: the
    request must not close the connection that holds it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _check(case: Any, response: Any, tally: Tally) -> None:
    tally.cases += 1
    tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
    where = f"{case.method} {case.formatted_path}"
    if response.status_code >= 500:
        curl = case.as_curl_command()
        tally.server_errors.append(f"{response.status_code} {where}\n    {curl}")
        return
    if response.status_code >= 400:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not (isinstance(body, dict) and set(body) == {"error"}):
            tally.bad_format.append(f"{response.status_code} {where}: {response.content[:200]!r}")


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    send: Any,
    tally: Tally,
    path_parameters: dict[str, int] | None = None,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @HYPOTHESIS
    @given(case=strategy)
    def run(case: Any) -> None:
        _check(case, send(case), tally)

    run()


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.content
    body = response.json()
    return body[0] if isinstance(body, list) else body


def _seed(client: Any, cast: Cast) -> dict[str, dict[str, int]]:
    """Real rows to aim generated requests at, by the path's resource: without them nearly
    every request with an id in its path is a 404 before it reaches any code worth testing."""
    from tenants.models import Membership, Role
    from tenants.services.apikeys import create_api_key

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _created(client.post(f"/api/v1/{path}", body, format="json"))

    lead = post("leads", {"email": "seed@example.com", "first_name": "Seed"})
    template = post("templates", {"name": "Seed", "subject": "Hi", "text_body": "Hello"})
    lead_list = post("lists", {"name": "Seed"})
    campaign = post("campaigns", {"name": "Seed", "lead_list_ids": [lead_list["id"]]})
    step = post(
        f"campaigns/{campaign['id']}/steps", {"variants": [{"template_id": template["id"]}]}
    )
    domain = post("domains", {"name": "seed-example.com"})
    role = post("roles", {"name": "Seeder", "permissions": {"leads": "read"}})
    suppression = post("suppressions", {"values": ["gone@example.com"]})
    other_key = create_api_key(
        cast.tenant, name="seed", role=Role.objects.get(tenant=None, slug="viewer"), actor=None
    )
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    return {
        "leads": {"id": lead["id"], "lead_id": lead["id"]},
        "templates": {"id": template["id"]},
        "lists": {"id": lead_list["id"]},
        "campaigns": {"id": campaign["id"], "campaign_id": campaign["id"], "step_id": step["id"]},
        "domains": {"id": domain["id"]},
        "roles": {"id": role["id"]},
        "suppressions": {"id": suppression["id"]},
        "api-keys": {"id": other_key.key.pk},
        "members": {"id": member.pk},
    }


def test_it_answers_every_generated_request_below_500(cast: Cast, wsgi_app: WSGIHandler) -> None:
    kc = key_client(cast.tenant, role="admin")
    base_url = f"http://{host_of(cast.tenant)}"
    headers = {"Authorization": f"Bearer {kc.plaintext}"}
    raw = kc.client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = schemathesis.openapi.from_dict(json.loads(raw.content))

    def send(case: Any) -> Any:
        with _in_test_transaction():
            response = case.call(app=wsgi_app, base_url=base_url, headers=headers)
        # A generated DELETE or revoke may hit the fuzzer's own key: put it back.
        ApiKey.objects.filter(pk=kc.key.pk, revoked_at__isnull=False).update(revoked_at=None)
        return response

    seeds = _seed(kc.client, cast)
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, len(operations)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, send, tally)
        # Again with the path's ids naming real rows (valid bodies and queries).
        names = {p.name for p in operation.path_parameters}
        known = seeds.get(operation.path.split("/")[3], {})
        if names and names <= set(known):
            params = {name: known[name] for name in names}
            _fuzz(operation, GenerationMode.POSITIVE, send, tally, path_parameters=params)

    print(
        f"\nschemathesis: {len(operations)} operations, {tally.cases} requests, {tally.by_status}"
    )
    assert tally.cases >= len(operations) * 2
    assert tally.server_errors == [], "\n".join(tally.server_errors)
    assert tally.bad_format == [], "\n".join(tally.bad_format)
