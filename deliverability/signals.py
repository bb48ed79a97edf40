"""Events deliverability publishes for the apps above it (it imports none of them).

`inbound_classified(tenant, inbound, classification, headers, chunk)`: sent once per inbound
message, inside the transaction that acts on its chunk and marks it processed (docs/inbound.md,
"Actions"); `chunk` is the whole chunk, so a receiver can look up what it needs for all of it at
once. Receivers act on the data they own and return a dict (`message_id`: the matched
campaigns.Message pk, `mailbox_id`: the mailbox that sent it, `action`: what was done, in words)
or None. An exception rolls the chunk back; it is then acted on one message at a time, and the
failing message is retried on the next poll.

`mailbox_moved(tenant, mailbox, deleted)`: sent when a mailbox changed status
(`transition_mailbox`) or is deleted (`deleted=True`), inside the caller's transaction, after
the public poll index was kept in step. The warm-up pool keeps its index in step the same way
(docs/warmup.md, "The pool").
"""

from __future__ import annotations

from django.dispatch import Signal

inbound_classified = Signal()
mailbox_moved = Signal()
