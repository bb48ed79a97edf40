"""One sandbox Dovecot for the session, with a pool of users made in one passwd rewrite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from penguinmails.sandbox.imap import SandboxImap
from tests.dovecot import running_dovecot

POOL = {f"user{n}@sandbox.test": f"secret-{n}" for n in range(30)}
_next = itertools.count()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[SandboxImap]:
    with running_dovecot(POOL) as server:
        yield server


@pytest.fixture
def user(dovecot: SandboxImap) -> tuple[str, str]:
    """A mailbox user no other test touches: (address, password)."""
    address = f"user{next(_next)}@sandbox.test"
    return address, POOL[address]
