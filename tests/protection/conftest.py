"""Fixtures for automatic protection: the inbound poller's world (a campaign sent through the
real pipeline to the sandbox SMTP server, its mailbox read from the real Dovecot)."""

from __future__ import annotations

from tests.inbound_poll.conftest import dovecot, imap  # noqa: F401 - the fixtures
from tests.sending.conftest import sandbox  # noqa: F401 - the fixture
