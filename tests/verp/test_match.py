"""Issue 12, item 2: which message a report is about (campaigns.services.matching), in order:
the bounce address it was delivered to, In-Reply-To, References, the quoted original
Message-ID. Our own header is no source (compose adds none). Tenant-bound throughout."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from campaigns.models import Message
from campaigns.sending.verp import bounce_address
from campaigns.services.matching import match_message
from tests.conftest import Cast
from tests.sending.conftest import DOMAIN, Sandbox
from tests.verp.conftest import send_campaign

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(cast: Cast, sandbox: Sandbox) -> tuple[Message, Message]:
    sent = send_campaign(cast, sandbox, leads=2)
    first, second = sent.messages
    assert first.message_id and second.message_id
    return first, second


def _verp(message: Message, tenant_id: int) -> str:
    return bounce_address(tenant_id, message.pk, DOMAIN, local="sender1")


def test_each_source_in_order(cast: Cast, pair: tuple[Message, Message]) -> None:
    a, b = pair
    t = cast.tenant
    ids = {a.pk: a.message_id or "", b.pk: b.message_id or ""}
    with schema_context(t.schema_name):
        # 1. the bounce address wins over every header
        got = match_message(
            t, verp_rcpt=_verp(a, t.pk).upper(), in_reply_to=ids[b.pk],
            references=ids[b.pk], original_message_id=ids[b.pk],
        )  # fmt: skip
        assert got == (t.pk, a.pk)
        # 2. In-Reply-To over References and the quoted original
        got = match_message(
            t, verp_rcpt=f"sender1@{DOMAIN}", in_reply_to=ids[a.pk],
            references=ids[b.pk], original_message_id=ids[b.pk],
        )  # fmt: skip
        assert got == (t.pk, a.pk)
        # 3. References, the newest (last) first, over the quoted original
        refs = f"<old@elsewhere.test>\r\n {ids[a.pk]} {ids[b.pk]}"
        got = match_message(
            t, in_reply_to="<unknown@elsewhere.test>", references=refs,
            original_message_id=ids[a.pk],
        )  # fmt: skip
        assert got == (t.pk, b.pk)
        # 4. the Message-ID quoted in the report (bare or bracketed, any case)
        bare = ids[b.pk].strip("<>").upper()
        assert match_message(t, original_message_id=bare) == (t.pk, b.pk)
        assert match_message(t, references="garbage", original_message_id=ids[a.pk]) == (
            t.pk,
            a.pk,
        )
        # our own header is no source; nothing at all is no match
        assert match_message(t, own_header=str(a.pk)) is None
        assert match_message(t) is None


def test_a_forged_token_falls_through_to_the_headers(
    cast: Cast, pair: tuple[Message, Message]
) -> None:
    a, b = pair
    t = cast.tenant
    good = _verp(a, t.pk)
    local, _, domain = good.rpartition("@")
    forged = f"{local[:-1]}{'b' if local[-1] == 'a' else 'a'}@{domain}"
    with schema_context(t.schema_name):
        assert match_message(t, verp_rcpt=forged) is None
        assert match_message(t, verp_rcpt=forged, in_reply_to=b.message_id) == (t.pk, b.pk)
        # A valid token of a message that is not (or no longer) there: no match.
        assert match_message(t, verp_rcpt=bounce_address(t.pk, 10**12, DOMAIN)) is None


def test_another_tenants_message_is_never_matched(
    cast: Cast, pair: tuple[Message, Message]
) -> None:
    a, _ = pair
    acme, globex = cast.tenant, cast.other_tenant
    # acme's message, reported to a globex mailbox: its token and its Message-ID match nothing.
    with schema_context(globex.schema_name):
        assert not Message.objects.filter(pk=a.pk, message_id=a.message_id).exists()
        got = match_message(
            globex, verp_rcpt=_verp(a, acme.pk), in_reply_to=a.message_id,
            references=a.message_id, original_message_id=a.message_id,
        )  # fmt: skip
        assert got is None
    # A token signed for globex naming the pk of acme's message is not acme's message.
    with schema_context(acme.schema_name):
        assert match_message(acme, verp_rcpt=_verp(a, globex.pk)) is None


def test_it_refuses_to_run_in_another_schema(cast: Cast, pair: tuple[Message, Message]) -> None:
    connection.set_schema_to_public()
    with pytest.raises(RuntimeError):
        match_message(cast.tenant, in_reply_to=pair[0].message_id)


def test_a_hostile_references_header_is_bounded(cast: Cast, pair: tuple[Message, Message]) -> None:
    a, _ = pair
    t = cast.tenant
    noise = " ".join(f"<n{i}@x.test>" for i in range(5000))
    with schema_context(t.schema_name):
        # Only the newest 50 are looked at: ours first in a long list is not found...
        assert match_message(t, references=f"{a.message_id} {noise}") is None
        # ...ours last (the parent, as a reply writes it) is.
        assert match_message(t, references=f"{noise} {a.message_id}") == (t.pk, a.pk)
        assert match_message(t, in_reply_to="\x00<" + "x" * 10_000) is None


def test_a_chunk_is_matched_in_two_queries_as_each_report_alone(
    cast: Cast, pair: tuple[Message, Message]
) -> None:
    """The poller matches a chunk at once (match_reports): each report's answer is the one it
    gets alone, in two queries whatever the chunk's size."""
    from django.test.utils import CaptureQueriesContext

    from campaigns.services.matching import Report, match_report, match_reports

    a, b = pair
    t = cast.tenant
    unknown = bounce_address(t.pk, 10**12, DOMAIN)  # signed, but no such message
    reports = [
        Report([_verp(a, t.pk)], in_reply_to=b.message_id),
        Report([f"sender1@{DOMAIN}", _verp(b, t.pk)]),
        Report([None], references=f"<x@y.test> {a.message_id}"),
        Report([unknown], original_message_id=(b.message_id or "").upper()),
        Report([_verp(a, t.pk + 1)]),
        Report([None]),
    ] * 5
    with schema_context(t.schema_name):
        alone = [
            match_report(
                t,
                verp_rcpts=r.verp_rcpts,
                in_reply_to=r.in_reply_to,
                references=r.references,
                original_message_id=r.original_message_id,
            )
            for r in reports
        ]
        with CaptureQueriesContext(connection) as queries:
            together = match_reports(t, reports)
    assert together == [found[1] if found else None for found in alone]
    assert together[:6] == [a.pk, b.pk, a.pk, b.pk, None, None]
    assert len(queries) == 2
