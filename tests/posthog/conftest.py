from __future__ import annotations

from tests.mailboxes.conftest import dovecot, imap_server, smtp_server  # noqa: F401 - fixtures
from tests.sending.conftest import sandbox  # noqa: F401 - the fixture
