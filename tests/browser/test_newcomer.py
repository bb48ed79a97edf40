"""A newcomer, in a real headless Chromium: signs up, lands on the new workspace's dashboard,
invites a member, creates an API key, logs out."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tenants.models import ApiKey, Invitation, Membership, Tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_takes_a_newcomer_from_signup_to_an_api_key(
    page: Any, site: str, mailoutbox: list[Any]
) -> None:
    page.goto(f"{site}/")
    page.get_by_role("link", name=re.compile("sign up", re.I)).first.click()

    page.get_by_label("Workspace name").fill("Penguin Outreach")
    page.get_by_label("Workspace address").fill("penguin-outreach")
    page.get_by_label("Your name").fill("Pat Newcomer")
    page.get_by_label("Work email").fill("pat@newcomer.example")
    page.get_by_label("Password").fill("a-long-and-unusual-passphrase")
    page.get_by_role("button", name="Create workspace").click()

    # Handed off to the new tenant's own host, logged in on its dashboard.
    port = site.rsplit(":", 1)[1]
    page.wait_for_url(f"http://penguin-outreach.localhost:{port}/")
    assert "Penguin Outreach" in page.content()
    tenant = Tenant.objects.get(slug="penguin-outreach")
    assert Membership.objects.get(tenant=tenant).role.slug == "owner"
    assert any("pat@newcomer.example" in m.to for m in mailoutbox)  # verification email

    # Invite a member from the team page.
    page.get_by_role("link", name="Team", exact=True).click()
    invite = page.locator("#invite-form")
    invite.get_by_label("Email").fill("sam@newcomer.example")
    invite.get_by_label("Role").select_option(label="Member")
    invite.get_by_role("button", name="Send invitation").click()
    page.get_by_text("sam@newcomer.example").first.wait_for()
    invitation = Invitation.objects.get(tenant=tenant, email="sam@newcomer.example")
    assert invitation.status == "pending" and invitation.role.slug == "member"
    assert any("sam@newcomer.example" in m.to for m in mailoutbox)

    # Create an API key in settings: shown once, and it works on this tenant's API.
    page.get_by_role("link", name="Settings", exact=True).click()
    key_form = page.locator("form", has=page.get_by_role("button", name="Create key"))
    key_form.get_by_label("Name").fill("CRM sync")
    key_form.get_by_role("button", name="Create key").click()
    plaintext = page.locator("#new-api-key").inner_text().strip()
    assert plaintext.startswith("pm_")
    key = ApiKey.objects.get(tenant=tenant, name="CRM sync")
    assert plaintext not in key.key_hash
    # Python's resolver does not map *.localhost to loopback as Chromium does: name the host.
    me = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/me",
        headers={
            "Host": f"penguin-outreach.localhost:{port}",
            "Authorization": f"Bearer {plaintext}",
        },
    )
    assert me.status_code == 200, me.text
    assert me.json()["tenant"]["slug"] == "penguin-outreach"

    # Log out: back to a login page, and the dashboard no longer opens.
    page.goto(f"http://penguin-outreach.localhost:{port}/")
    page.locator("details.userbox summary").click()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.goto(f"http://penguin-outreach.localhost:{port}/")
    assert "/login/" in page.url
