"""Issue 12, item 2: the bounce address's token (campaigns.sending.verp). Pure functions."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import override_settings

from campaigns.sending import verp
from campaigns.sending.verp import bounce_address, parse_bounce_address

DOMAIN = "mail.acme.test"
LOCAL = re.compile(r"^[a-z0-9.+-]+$")


@pytest.mark.parametrize(
    ("tenant_id", "message_pk"), [(1, 1), (7, 123_456), (2**32 - 1, 2**63 - 1), (42, 0)]
)
def test_it_round_trips(tenant_id: int, message_pk: int) -> None:
    for local in ("", "sam"):
        address = bounce_address(tenant_id, message_pk, DOMAIN, local=local)
        assert parse_bounce_address(address) == (tenant_id, message_pk)
        assert parse_bounce_address(f"<{address}>") == (tenant_id, message_pk)


def test_the_address_is_on_the_sending_domain_and_short_enough() -> None:
    address = bounce_address(3, 99, "Mail.Acme.Test", local="sam")
    local, _, domain = address.rpartition("@")
    assert domain == DOMAIN
    assert local.startswith("sam+b-") and len(local) <= 64 and LOCAL.match(local), local
    bare = bounce_address(3, 99, DOMAIN)
    assert bare.startswith("b-") and len(bare.split("@")[0]) == 2 + verp.TOKEN_CHARS
    # A mailbox name that leaves no room for the token: the bare form, still under 64.
    long_local = "a" * 40
    address = bounce_address(3, 99, DOMAIN, local=long_local)
    assert address.startswith("b-") and len(address.split("@")[0]) <= 64
    assert parse_bounce_address(address) == (3, 99)


def test_the_local_part_survives_a_change_of_case() -> None:
    address = bounce_address(5, 1234, DOMAIN, local="sam")
    assert address == address.lower()
    assert parse_bounce_address(address.upper()) == (5, 1234)
    assert parse_bounce_address(address.title()) == (5, 1234)


def _token_of(address: str) -> str:
    return address.split("@")[0].rpartition("+")[2][2:]


def test_a_tampered_token_does_not_parse() -> None:
    address = bounce_address(5, 1234, DOMAIN)
    token = _token_of(address)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for i, char in enumerate(token):
        other = alphabet[(alphabet.index(char) + 1) % 32]
        forged = f"b-{token[:i]}{other}{token[i + 1 :]}@{DOMAIN}"
        assert parse_bounce_address(forged) is None, i
    assert parse_bounce_address(f"b-{token[:-1]}@{DOMAIN}") is None
    assert parse_bounce_address(f"b-{token}a@{DOMAIN}") is None


def test_another_tenant_or_message_cannot_be_written_in() -> None:
    """The payload of tenant 5's token with tenant 6 (or another message) written in, MAC kept."""
    raw = base64.b32decode(_token_of(bounce_address(5, 1234, DOMAIN)).upper() + "====")
    for payload in (verp._PAYLOAD.pack(6, 1234), verp._PAYLOAD.pack(5, 1235)):
        forged = base64.b32encode(payload + raw[verp._PAYLOAD.size :]).decode().rstrip("=")
        assert parse_bounce_address(f"b-{forged.lower()}@{DOMAIN}") is None


def test_a_token_made_with_another_key_does_not_parse() -> None:
    with override_settings(SECRET_KEY="another-platform-" + "x" * 40):
        address = bounce_address(5, 1234, DOMAIN)
    assert parse_bounce_address(address) is None
    assert parse_bounce_address(bounce_address(5, 1234, DOMAIN)) == (5, 1234)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "sam@mail.acme.test",
        "no-at-sign",
        "<>",
        "b-@mail.acme.test",
        "b-" + "a" * 36 + "@mail.acme.test",  # right shape, no valid MAC
        "b-" + "1" * 36 + "@mail.acme.test",  # not base32
        "b-" + "a" * 35 + "=@mail.acme.test",
        "unsubscribe-" + "a" * 39 + "@mail.acme.test",  # the mailto unsubscribe form
        "x" * 100_000 + "@example.test",
        "b-\x00" + "a" * 34 + "@mail.acme.test",
        "MAILER-DAEMON",
    ],
)
def test_foreign_and_forged_addresses_are_none(address: str) -> None:
    assert parse_bounce_address(address) is None
