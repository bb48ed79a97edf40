"""Issue 10, item 17: every message from a domain whose key the tenant holds leaves DKIM-signed
with the key published in DNS. Checked the way a receiver checks it: the message as the sandbox
SMTP server captured it, verified by dkimpy with the key fetched from the sandbox DNS server
(dnspython over UDP), after `add_domain` generated the key and the local provider published it."""

from __future__ import annotations

import mailbox as mailbox_lib
import re

import dkim
import dns.resolver
import pytest
from django_tenants.utils import schema_context

from campaigns.services import campaigns as svc
from deliverability import dkim as signer
from deliverability.models import SendingDomain
from deliverability.services.domains import add_domain
from penguinmails.sandbox.dns import SandboxDnsServer
from tests.conftest import Cast
from tests.domains.conftest import dns_server, run_jobs  # noqa: F401 - the fixture
from tests.sending.conftest import DOMAIN, Sandbox, drain, make_campaign, principal

pytestmark = pytest.mark.django_db(transaction=True)

REQUIRED = {
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
}


def captured(sandbox: Sandbox) -> list[bytes]:
    box = mailbox_lib.Maildir(str(sandbox.maildir), create=False)
    return [box.get_bytes(key) for key in sorted(box.keys())]


def sandbox_txt(server: SandboxDnsServer):  # noqa: ANN201 - dkimpy's dnsfunc
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(rr.strings) for rr in answer)

    return lookup


def tags(raw: bytes) -> dict[bytes, bytes]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r\n(?! )", raw, re.S | re.M)
    assert header, raw[:500]
    value = re.sub(rb"\s+", b"", header.group(1))
    return dict(t.split(b"=", 1) for t in value.split(b";") if t)


@pytest.fixture
def published(cast: Cast, dns_server: SandboxDnsServer) -> SendingDomain:  # noqa: F811
    signer.forget_keys()
    with schema_context(cast.tenant.schema_name):
        domain = add_domain(principal(cast), name=DOMAIN)
    run_jobs(limit=20)  # publish into the sandbox zone, then the first check
    with schema_context(cast.tenant.schema_name):
        # The test is about signing, not about the tenant's IPs (SPF/PTR): let it send.
        SendingDomain.objects.filter(pk=domain.pk).update(status="verified")
        domain.refresh_from_db()
    return domain


def test_it_signs_every_message_with_the_published_key(
    cast: Cast,
    sandbox: Sandbox,
    dns_server: SandboxDnsServer,  # noqa: F811
    published: SendingDomain,
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=2, steps=1)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    messages = captured(sandbox)
    assert len(messages) == 2
    lookup = sandbox_txt(dns_server)
    for raw in messages:
        assert dkim.verify(raw, dnsfunc=lookup), raw[:800]
        signature = tags(raw)
        assert signature[b"d"] == DOMAIN.encode()
        assert signature[b"s"] == published.dkim_selector.encode()
        assert signature[b"a"] == b"rsa-sha256" and signature[b"c"] == b"relaxed/relaxed"
        assert REQUIRED <= set(signature[b"h"].split(b":"))
    # A receiver notices a change to a signed header, and to the body.
    first = messages[0]
    assert not dkim.verify(first.replace(b"Subject: Hello", b"Subject: Hallo", 1), dnsfunc=lookup)
    assert not dkim.verify(first.replace(b"Hi Lead", b"Hi Mead", 1), dnsfunc=lookup)


def test_it_sends_unsigned_when_the_tenant_holds_no_key(cast: Cast, sandbox: Sandbox) -> None:
    # A domain with no usable key (here a placeholder): the message still goes, unsigned, and
    # the error is logged; a connected mailbox on a domain never added is signed by its provider.
    signer.forget_keys()
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=1, steps=1)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    (raw,) = captured(sandbox)
    assert b"DKIM-Signature" not in raw
