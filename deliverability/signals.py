"""Events deliverability publishes for the apps above it (it imports none of them).

`inbound_classified(tenant, inbound, classification, headers)`: sent once per inbound message,
inside the transaction that marks it processed (docs/inbound.md, "Actions"). Receivers act on
the data they own and return a dict (`message_id`: the matched campaigns.Message pk,
`mailbox_id`: the mailbox that sent it, `action`: what was done, in words) or None. An exception
rolls the whole message back; it is retried on the next poll.
"""

from __future__ import annotations

from django.dispatch import Signal

inbound_classified = Signal()
