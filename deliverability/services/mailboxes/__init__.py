"""Mailboxes: create on our mail server, connect from outside, test, pause, resume, limit, delete
(docs/mailboxes.md).

Every function runs in the tenant's schema (dashboard and API on the tenant's host, job handlers
through the queue runner, commands inside `schema_context`) and refuses otherwise. Background
steps are jobs enqueued in the caller's transaction:

- `mailboxes.provision`: create the user on the tenant's Mailu server with the generated password
  (a SANDBOX server needs nothing), then activate the mailbox;
- `mailboxes.deprovision`: delete a removed hosted mailbox's user from its Mailu server.

Passwords are `Secret`s: revealed only to hand them to the SMTP/IMAP/Mailu server they belong
to, never logged, audited or returned. A password no configured key opens marks the mailbox
UNUSABLE and raises `SecretUnavailable`, naming the setting.

Modules: `access` (`list_mailboxes`, `access_mailbox`), `validation` (values and the checks
before an insert), `lifecycle` (`transition_mailbox`, pause, resume, daily limit), `credentials`
(`endpoints`, `mark_unusable`), `connect` (`connect_mailbox`, `test_mailbox`), `hosted`
(`create_mailbox`, the provision/deprovision job steps, `delete_mailbox`), `sends`
(`record_sends`, `record_send_failure`, `sent_today`).
"""

from __future__ import annotations

from deliverability.services.mailboxes.access import (
    access_mailbox,
    list_mailboxes,
)
from deliverability.services.mailboxes.connect import (
    EXTERNAL_KINDS,
    ConnectionFailed,
    connect_mailbox,
    test_mailbox,
)
from deliverability.services.mailboxes.credentials import (
    endpoints,
    mark_unusable,
)
from deliverability.services.mailboxes.hosted import (
    DEPROVISION_TASK,
    PROVISION_TASK,
    MailboxProvisionRetry,
    NoMailServer,
    attach_sandbox_imap,
    create_mailbox,
    delete_mailbox,
    deprovision_mailbox,
    provision_mailbox,
)
from deliverability.services.mailboxes.lifecycle import (
    pause_mailbox,
    resume_mailbox,
    set_daily_limit,
    transition_mailbox,
)
from deliverability.services.mailboxes.sends import (
    PAUSE_AFTER_FAILURES,
    record_send_failure,
    record_send_success,
    record_sends,
    sent_today,
)
from deliverability.services.mailboxes.validation import (
    DEFAULT_DAILY_LIMIT,
    MAX_DAILY_LIMIT,
)

__all__ = [
    "attach_sandbox_imap",
    "ConnectionFailed",
    "DEFAULT_DAILY_LIMIT",
    "DEPROVISION_TASK",
    "EXTERNAL_KINDS",
    "MAX_DAILY_LIMIT",
    "MailboxProvisionRetry",
    "NoMailServer",
    "PAUSE_AFTER_FAILURES",
    "PROVISION_TASK",
    "access_mailbox",
    "connect_mailbox",
    "create_mailbox",
    "delete_mailbox",
    "deprovision_mailbox",
    "endpoints",
    "list_mailboxes",
    "mark_unusable",
    "pause_mailbox",
    "provision_mailbox",
    "record_send_failure",
    "record_send_success",
    "record_sends",
    "resume_mailbox",
    "sent_today",
    "set_daily_limit",
    "test_mailbox",
    "transition_mailbox",
]
