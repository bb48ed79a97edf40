"""The state machine refuses illegal moves; `manage.py sandbox dns` serves the zone file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.resolver
import pytest
from django_tenants.utils import schema_context

from deliverability.dns.verify import make_resolver
from deliverability.models import DomainStatus, SendingDomain
from deliverability.services.domains import add_domain
from deliverability.services.states import transition
from penguinmails import states
from penguinmails.errors import IllegalTransition
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore
from tests.conftest import Cast
from tests.domains.conftest import principal

ROOT = Path(__file__).resolve().parents[2]


def test_it_refuses_an_illegal_transition_and_records_legal_ones(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        domain = add_domain(principal(cast.tenant, cast.owner), name="acme-mail.test")
        with pytest.raises(IllegalTransition):
            transition(domain, DomainStatus.FAILING)  # never verified: cannot be failing
        stale = SendingDomain.objects.get(pk=domain.pk)
        transition(domain, DomainStatus.VERIFYING, reason="asked")
        with pytest.raises(IllegalTransition, match="meanwhile"):
            transition(stale, DomainStatus.UNVERIFIED)  # read as pending, it moved since
        fresh = SendingDomain.objects.get(pk=domain.pk)
        assert fresh.status == DomainStatus.VERIFYING
        assert [(t.from_status, t.to_status) for t in states.history(fresh)] == [
            ("pending", "verifying")
        ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_serves_the_zone_file_from_the_sandbox_dns_command(tmp_path: Path) -> None:
    zones = tmp_path / "zones.json"
    ZoneStore(zones).add(ZoneRecord.make("acme-mail.test", "TXT", "v=spf1 ip4:127.0.0.1 ~all"))
    port = _free_port()
    cmd = [
        sys.executable,
        "manage.py",
        "sandbox",
        "dns",
        "--port",
        str(port),
        "--zones",
        str(zones),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    try:
        resolver = make_resolver([f"127.0.0.1:{port}"], timeout=0.5)
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = resolver.resolve("acme-mail.test", "TXT")
                break
            except dns.exception.DNSException:
                assert proc.poll() is None, "sandbox dns exited"
                assert time.monotonic() < deadline, "sandbox dns never answered"
                time.sleep(0.2)
        assert [b"".join(r.strings).decode() for r in answer] == ["v=spf1 ip4:127.0.0.1 ~all"]
        # A record the local provider writes later is served without a restart.
        ZoneStore(zones).add(ZoneRecord.make("_dmarc.acme-mail.test", "TXT", "v=DMARC1; p=none"))
        deadline = time.monotonic() + 5
        while True:
            try:
                assert resolver.resolve("_dmarc.acme-mail.test", "TXT")
                break
            except dns.resolver.NXDOMAIN:
                assert time.monotonic() < deadline, "the new record was never served"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
