"""Issue 16 (send row): the send path's cheaper forms give the same answers as what they replace.
The signer's header selection and relaxed canonicalisation equal dkimpy's on any header set, and
the chunk statements' row source (unnest of one array per column) hands PostgreSQL the rows
exactly as given. A batch is still claimed chunk by chunk."""

from __future__ import annotations

import asyncio
import base64
import random
from datetime import UTC, datetime
from typing import Any

import dkim
import pytest
from django_tenants.utils import schema_context
from dkim.canonicalization import CanonicalizationPolicy

from campaigns.models import Campaign, Message, MessageStatus, StoppedBy
from campaigns.sending import pipeline
from campaigns.sending.sql import fetch, values
from campaigns.services import campaigns as svc
from deliverability import dkim as signer
from tests.conftest import Cast
from tests.sending.conftest import Sandbox, drain, make_campaign, principal

NAMES = [b"From", b"from", b"FROM ", b"To", b"Subject", b"X-Other", b"Reply-To", b"Date", b"Cc"]
NAMES += [b"List-Id", b"Message-ID", b"content-type", b"List-Unsubscribe", b"MIME-Version"]
VALUES = [
    b" plain\r\n",
    b"\ttab  and  doubled \r\n",
    b" folded\r\n  over\r\n\tlines\r\n",
    b"   \r\n",
    b"\r\n",
    b" vertical \x0b tab\r\n",
    b" bare\nline feed\r\r\n",
    b" \r\r\n cr\n\n",
    b" no line end \t ",
]


def test_it_selects_and_canonicalises_signed_headers_as_dkimpy_does() -> None:
    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    rng = random.Random(16)
    for _ in range(5000):
        fields = [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.randrange(15))]
        expected = relaxed.canonicalize_headers(dkim.select_headers(fields, signer.SIGNED_HEADERS))
        assert signer._relaxed(signer._select(fields)) == expected, fields


def test_it_signs_what_dkimpy_verifies() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    key = signer.load_key("example.test", "pm1", pem)
    message = (
        b"From: A <a@example.test>\r\nTo: b@example.org\r\nSubject:  two  spaces\r\n"
        b"Date: Sat, 05 Dec 2026 17:00:00 +0000\r\nMessage-ID: <x@example.test>\r\n"
        b"List-Unsubscribe: <https://t.example.test/u/abc>,\r\n <mailto:a@example.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello \t there\r\n\r\n"
    )
    signed = signer.sign(message, key)
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(
        signed.replace(b"two  spaces", b"two spaces!"), dnsfunc=lambda *a, **k: record
    )


@pytest.mark.django_db
def test_it_hands_the_rows_to_postgresql_as_given() -> None:
    at = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    rows = [
        (1, "plain", None, at),
        (2**40, "quote ' double \" brace {a,b} back\\slash, comma", 7, None),
        (3, "", -1, at),
        (4, "NULL", 0, at),
        (5, "ünïcode ✓", None, None),
    ]
    body, params = values(rows, ["bigint", "text", "integer", "timestamptz"])
    got = fetch(f"SELECT * FROM ({body}) AS v(id, t, n, at) ORDER BY id", params)  # noqa: S608
    assert [tuple(r) for r in got] == sorted(rows)
    body, params = values([], ["bigint", "text"])
    assert fetch(f"SELECT * FROM ({body}) AS v(id, t)", params) == []  # noqa: S608


@pytest.mark.django_db(transaction=True)
def test_it_claims_a_batch_chunk_by_chunk_so_a_pause_holds_the_rest(
    cast: Cast, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CLAIM_CHUNK (250 since issue 16) bounds what one claim takes: a pause during a chunk lets
    # that chunk go out and holds every later one. Two here, so five messages are three chunks.
    monkeypatch.setattr(pipeline, "CLAIM_CHUNK", 2)
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=5, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)

    def pause() -> None:
        with schema_context(cast.tenant.schema_name):
            svc.pause_campaign(principal(cast), Campaign.objects.get(pk=campaign.pk))

    handler = sandbox.controller.handler
    rcpts: list[str] = []

    async def handle_RCPT(  # noqa: N802
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not rcpts:  # the first message of the first chunk: pause the campaign meanwhile
            await asyncio.to_thread(pause)
        rcpts.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    handler.handle_RCPT = handle_RCPT
    drain(cast.tenant, rounds=1)
    with schema_context(cast.tenant.schema_name):
        rows = list(Message.objects.filter(campaign=campaign).values_list("status", "stopped_by"))
    # The first chunk went out; the claim of the next found the campaign paused and held it
    # (the job then stops: its last chunk waits, queued, for the scheduler after a resume).
    assert sorted(rows).count((MessageStatus.SENT, "")) == 2
    assert [status for status, _ in rows].count(MessageStatus.QUEUED) == 3
    assert (MessageStatus.QUEUED, StoppedBy.CAMPAIGN_RUNNING) in rows
    assert len(rcpts) == 2 and len(sandbox.messages()) == 2
