"""Bad input on the webhooks page and API (added 2026-12-05): unknown, foreign, huge and
non-numeric ids, bad URLs (NUL bytes, huge, wrong schemes, private addresses), bad JSON and wrong
types, as the owner, the viewer and the outsider. Never a 500.

Written by the review (R1); webhooks/ was being changed by another helper, so defects found here
are reported rather than fixed in the same change.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cast, client_for
from tests.review.probe import HUGE, HUGE_ID, NUL, Probe

BAD_URLS = [
    "",
    NUL,
    f"https://hooks.example.com/{NUL}",
    "https://" + "a" * 3000 + ".example.com/",
    "ftp://hooks.example.com/",
    "https://127.0.0.1/in",
    "https://[::1]/in",
    "https://10.0.0.1/in",
    "https://169.254.169.254/latest/meta-data",
    "https://hooks.example.com:99999/in",
    "https://hooks.example.com:abc/in",
    "https://[not-an-ip/in",
    "https://xn--/in",
    "https://" + "\u00e9" * 70 + ".example.com/",
    "https:///nohost",
    "javascript:alert(1)",
]


def test_webhooks_api_refuses_bad_bodies_and_ids(cast: Cast, rows: Any, settings: Any) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False  # as in production
    acme, globex = rows
    mine, theirs = acme.api_ids["webhooks"], globex.api_ids["webhooks"]
    delivery = acme.kwargs["delivery_id"]
    probe = Probe()
    owner = client_for(cast.owner, cast.tenant, api=True)
    for url in BAD_URLS:
        body = json.dumps({"url": url, "events": ["message.sent"]})
        probe.check(owner, "POST", "/api/v1/webhooks", {400}, raw=body, who="owner")
        body = json.dumps({"url": url})
        probe.check(owner, "PATCH", f"/api/v1/webhooks/{mine}", {400}, raw=body, who="owner")
    bodies = [
        "{",
        "[]",
        "null",
        '"x"',
        json.dumps({}),
        json.dumps({"url": 5, "events": "message.sent"}),
        json.dumps({"url": ["https://hooks.example.com/"], "events": ["message.sent"]}),
        json.dumps({"url": "https://hooks.example.com/", "events": []}),
        json.dumps({"url": "https://hooks.example.com/", "events": ["nope", NUL]}),
        json.dumps({"url": "https://hooks.example.com/", "events": [{"a": 1}]}),
        json.dumps({"url": "https://hooks.example.com/", "events": ["message.sent"],
                    "description": NUL}),
        json.dumps({"url": "https://hooks.example.com/", "events": ["message.sent"],
                    "description": HUGE}),
        json.dumps({"url": "https://hooks.example.com/", "events": ["message.sent"],
                    "enabled": "perhaps"}),
    ]  # fmt: skip
    for raw in bodies:
        probe.check(owner, "POST", "/api/v1/webhooks", {400}, raw=raw, who="owner")
    for raw in bodies[:4] + bodies[5:]:
        probe.check(owner, "PATCH", f"/api/v1/webhooks/{mine}", {400}, raw=raw, who="owner")
    for bad in (theirs, HUGE_ID, "abc", "0", "-1", "1.5"):
        for method, suffix in (
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("GET", "/secret"),
            ("POST", "/rotate-secret"),
            ("POST", "/test"),
            ("GET", "/deliveries"),
            ("POST", f"/deliveries/{delivery}/replay"),
        ):
            probe.check(
                owner, method, f"/api/v1/webhooks/{bad}{suffix}", {404}, raw="{}", who="owner"
            )
    for bad in (HUGE_ID, globex.kwargs["delivery_id"]):
        url = f"/api/v1/webhooks/{mine}/deliveries/{bad}/replay"
        probe.check(owner, "POST", url, {404}, raw="{}", who="owner")
    probe.check(owner, "PUT", f"/api/v1/webhooks/{mine}", {405}, raw="{}", who="owner")
    probe.check(owner, "GET", "/api/v1/webhooks?page=abc", {200, 404}, who="owner")
    viewer = client_for(cast.viewer, cast.tenant, api=True)
    for method, suffix in (("GET", "/secret"), ("POST", "/rotate-secret"), ("DELETE", "")):
        probe.check(viewer, method, f"/api/v1/webhooks/{mine}{suffix}", {403}, who="viewer")
    probe.check(
        viewer, "POST", "/api/v1/webhooks", {403}, who="viewer",
        raw=json.dumps({"url": "https://hooks.example.com/", "events": ["message.sent"]}),
    )  # fmt: skip
    outsider = client_for(cast.outsider, cast.tenant, api=True)
    probe.check(outsider, "GET", f"/api/v1/webhooks/{mine}/secret", {401, 403}, who="outsider")
    assert probe.failures == [], "\n".join(probe.failures)


def test_webhooks_pages_refuse_bad_forms_and_ids(cast: Cast, rows: Any, settings: Any) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False  # as in production
    acme, globex = rows
    mine, theirs = acme.kwargs["webhook_id"], globex.kwargs["webhook_id"]
    delivery = acme.kwargs["delivery_id"]
    probe = Probe()
    owner = client_for(cast.owner, cast.tenant)
    for url in BAD_URLS:
        form = {"url": url, "events": ["message.sent"]}
        probe.check(owner, "POST", "/webhooks/new/", {400}, data=form, who="owner")
    for form in (
        {},
        {"url": "https://hooks.example.com/", "events": ["nope"]},
        {"url": "https://hooks.example.com/", "description": NUL},
        {"url": "https://hooks.example.com/", "description": HUGE},
    ):
        probe.check(owner, "POST", "/webhooks/new/", {400}, data=form, who="owner")
    probe.check(owner, "GET", "/webhooks/new/", {405}, who="owner")
    for bad in (theirs, HUGE_ID):
        probe.check(owner, "GET", f"/webhooks/{bad}/", {404}, who="owner")
        probe.check(owner, "POST", f"/webhooks/{bad}/action/", {404}, data={"do": "test"})
        url = f"/webhooks/{bad}/deliveries/{delivery}/replay/"
        probe.check(owner, "POST", url, {404}, data={}, who="owner")
    for bad in (HUGE_ID, globex.kwargs["delivery_id"]):
        url = f"/webhooks/{mine}/deliveries/{bad}/replay/"
        probe.check(owner, "POST", url, {404}, data={}, who="owner")
    for verb in ("", NUL, "explode", HUGE):
        probe.check(owner, "POST", f"/webhooks/{mine}/action/", {400}, data={"do": verb})
    probe.check(owner, "GET", f"/webhooks/{mine}/action/", {405}, who="owner")
    viewer = client_for(cast.viewer, cast.tenant)
    for verb in ("secret", "rotate", "delete", "disable"):
        probe.check(viewer, "POST", f"/webhooks/{mine}/action/", {403}, data={"do": verb})
    outsider = client_for(cast.outsider, cast.tenant)
    probe.check(outsider, "GET", f"/webhooks/{mine}/", {302, 403}, who="outsider")
    assert probe.failures == [], "\n".join(probe.failures)
