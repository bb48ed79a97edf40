"""A campaign sent through the real pipeline to the sandbox SMTP server (tests/sending's
helpers), and what the sandbox recorded of it."""

from __future__ import annotations

from dataclasses import dataclass

from django_tenants.utils import schema_context

from campaigns.models import Message
from campaigns.services import campaigns as svc
from penguinmails.sandbox.store import CapturedMessage, SandboxStore
from tests.conftest import Cast
from tests.sending.conftest import Sandbox, drain, make_campaign, principal, sandbox  # noqa: F401


@dataclass
class Sent:
    messages: list[Message]  # by pk
    captured: list[CapturedMessage]


def send_campaign(cast: Cast, sandbox: Sandbox, *, leads: int = 2) -> Sent:  # noqa: F811
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=leads, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        messages = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    captured = SandboxStore(sandbox.maildir).list_messages()
    return Sent(messages, list(captured))
