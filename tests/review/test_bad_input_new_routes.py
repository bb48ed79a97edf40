"""Bad input on the routes added on 2026-12-05 (audit log, reputation scores, warm-up faces,
webhooks, infrastructure resources): unknown ids, another tenant's ids, ids too large for a
column, wrong types, huge strings, NUL bytes, bad query strings, bad JSON, missing fields and
wrong methods, as the owner, the viewer and the outsider. Every answer is a refusal the caller
can act on (400 with field errors, 403, 404, 405), never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from tests.conftest import Cast, client_for
from tests.review.probe import HUGE, HUGE_ID, NUL, Probe


def _clients(cast: Cast, api: bool) -> dict[str, Client]:
    return {
        "owner": client_for(cast.owner, cast.tenant, api=api),
        "viewer": client_for(cast.viewer, cast.tenant, api=api),
        "outsider": client_for(cast.outsider, cast.tenant, api=api),
    }


BAD_QUERIES = [
    "since=yesterday",
    "until=2026-13-45",
    "since=2026-12-05&until=2026-01-01",
    f"actor={NUL}",
    f"action={NUL}",
    f"action={'a' * 5000}",
    "source=nobody",
    "page=-1",
    "page=abc",
    f"page={HUGE_ID}",
    "actor=not-an-address",
    "since=99999-01-01",
    "since=0001-01-01&until=0001-01-01",
    "until=9999-12-31",
]


def test_audit_log_page_and_api_refuse_bad_filters(cast: Cast, rows: Any) -> None:
    probe = Probe()
    for api in (False, True):
        url = "/api/v1/audit" if api else "/audit/"
        for who, client in _clients(cast, api).items():
            for query in BAD_QUERIES:
                # DRF's pagination answers a page that is not there with 404, as on every list.
                allowed = {200, 400, 404} if who == "owner" else {302, 401, 403}
                probe.check(client, "GET", f"{url}?{query}", allowed, who=who)
            for method in ("post", "put", "patch", "delete"):
                refused = {405} if who == "owner" else {302, 401, 403, 404, 405}
                probe.check(client, method, url, refused, data={"x": 1}, who=who)
    assert probe.failures == [], "\n".join(probe.failures)


def test_warmup_page_and_api_refuse_bad_ids_and_bodies(cast: Cast, rows: Any) -> None:
    acme, globex = rows
    mine, theirs = acme.kwargs["mailbox_id"], globex.kwargs["mailbox_id"]
    probe = Probe()
    owner_page = client_for(cast.owner, cast.tenant)
    owner_api = client_for(cast.owner, cast.tenant, api=True)
    for bad in (theirs, 1, HUGE_ID, 0):
        probe.check(owner_page, "GET", f"/warmup/mailboxes/{bad}/", {404}, who="owner")
        probe.check(
            owner_page, "POST", f"/warmup/mailboxes/{bad}/settings/", {404}, data={}, who="owner"
        )
        probe.check(owner_api, "GET", f"/api/v1/mailboxes/{bad}/warmup", {404}, who="owner")
        probe.check(
            owner_api, "PATCH", f"/api/v1/mailboxes/{bad}/warmup", {404}, raw="{}", who="owner"
        )
    probe.check(owner_page, "GET", f"/warmup/mailboxes/{mine}/settings/", {405}, who="owner")
    for method in ("post", "put", "delete"):
        probe.check(owner_api, method, f"/api/v1/mailboxes/{mine}/warmup", {405}, who="owner")
    bodies = [
        "{",
        "[]",
        '"text"',
        "null",
        "42",
        json.dumps({"start_volume": "many"}),
        json.dumps({"start_volume": 10**40}),
        json.dumps({"start_volume": "9" * 5000}),
        json.dumps({"start_volume": 1.5}),
        json.dumps({"start_volume": [1]}),
        json.dumps({"start_volume": None}),
        json.dumps({"target": {"a": 1}}),
        json.dumps({"timezone": NUL}),
        json.dumps({"timezone": HUGE}),
        json.dumps({"timezone": 5}),
        json.dumps({"timezone": ["Europe/Paris"]}),
        json.dumps({"enabled": "maybe"}),
        json.dumps({"enabled": [True]}),
        json.dumps({"enabled": True, "start_volume": 400, "target": 10}),
        json.dumps({"enabled": True, "start_volume": 100, "target": 10}),
        json.dumps({"unknown": 1, NUL: 2}),
    ]
    for raw in bodies:
        probe.check(
            owner_api, "PATCH", f"/api/v1/mailboxes/{mine}/warmup", {400}, raw=raw, who="owner"
        )
    forms: list[dict[str, str]] = [
        {"start_volume": "many"},
        {"start_volume": "9" * 5000},
        {"timezone": NUL},
        {"timezone": HUGE},
        {"enabled": "maybe"},
        {"enabled": "on", "start_volume": "150", "target": "20"},
    ]
    for form in forms:
        probe.check(
            owner_page, "POST", f"/warmup/mailboxes/{mine}/settings/", {400}, data=form, who="owner"
        )
    viewer_api = client_for(cast.viewer, cast.tenant, api=True)
    viewer_page = client_for(cast.viewer, cast.tenant)
    probe.check(
        viewer_api, "PATCH", f"/api/v1/mailboxes/{mine}/warmup", {403}, raw='{"enabled": true}'
    )
    probe.check(
        viewer_page, "POST", f"/warmup/mailboxes/{mine}/settings/", {403}, data={"enabled": "on"}
    )
    outsider_api = client_for(cast.outsider, cast.tenant, api=True)
    probe.check(outsider_api, "GET", f"/api/v1/mailboxes/{mine}/warmup", {401, 403})
    assert probe.failures == [], "\n".join(probe.failures)


def test_reputation_and_infrastructure_reads_refuse_bad_ids_and_methods(
    cast: Cast, rows: Any
) -> None:
    acme, globex = rows
    probe = Probe()
    for who, client in _clients(cast, True).items():
        ok = {200} if who != "outsider" else {401, 403}
        probe.check(client, "GET", "/api/v1/reputation?kind=nope&page=abc", ok | {403}, who=who)
        probe.check(client, "POST", "/api/v1/reputation", {401, 403, 405}, data={}, who=who)
        for bad in (globex.api_ids["infrastructure"], HUGE_ID, "abc"):
            probe.check(client, "GET", f"/api/v1/infrastructure/{bad}", {401, 403, 404}, who=who)
    for who, client in _clients(cast, False).items():
        ok = {200} if who != "outsider" else {302, 403}
        probe.check(client, "GET", "/reputation/?page=abc", ok | {403}, who=who)
    assert probe.failures == [], "\n".join(probe.failures)
