"""The inbound poller's fixtures (a real Dovecot, a campaign sent through the sandbox SMTP)."""

from __future__ import annotations

from tests.inbound_poll.conftest import dovecot, imap  # noqa: F401 - the fixtures
from tests.sending.conftest import sandbox  # noqa: F401 - the fixture
