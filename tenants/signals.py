"""Named events tenants sends, for the apps above it to act on.

Tenants imports no app above it (DESIGN.md, Layout); where one of them must have a say, tenants
sends an event and that app subscribes at start-up (its AppConfig.ready). These are asked before
the change, inside its transaction: a receiver refuses by raising a DomainError (Django's
`Signal.send` lets it through to the caller), so billing's plan limits read the same wherever the
action starts.
"""

from __future__ import annotations

from django.dispatch import Signal

# The tenant is about to use the API: a key is being created, or a request authenticates with
# one. Sent with `tenant`. Billing refuses when the plan lacks API access.
api_access_requested = Signal()

# The tenant is about to take one more member seat (an invitation). Sent with `tenant`, inside
# the inviting transaction. Billing locks the tenant's usage and refuses past the plan's seats.
member_seat_requested = Signal()

# `tenants demo` (DEBUG only; `make run`) has the demo workspace and its owner's login ready. Sent
# with `tenant`, `owner` and `say` (a progress printer). campaigns.demo seeds everything the
# workspace shows (infrastructure, domain, mailboxes, a campaign); each step is idempotent.
demo_workspace_ready = Signal()
