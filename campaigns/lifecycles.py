"""The state machines of the campaigns app's models (docs/states.md): campaign, enrollment,
message and lead import. Declared here, beside `models.py`, to keep that file under its size
budget; `CampaignsConfig.ready` imports it so the machines exist once apps are loaded.

The send path moves messages and enrollments hundreds per statement with its own SQL; it checks
its moves against these tables and logs the non-routine ones (`quiet` lists the routine ones:
claim, accept, retry, finishing a sequence) with one INSERT per batch.
"""

from __future__ import annotations

from campaigns.models import (
    Campaign,
    CampaignLead,
    CampaignStatus,
    EnrollmentStatus,
    ImportStatus,
    LeadImport,
    Message,
    MessageStatus,
)
from penguinmails.states import StateMachine

C = CampaignStatus
# The named actions of `campaigns.services.campaigns.MOVES` map onto these moves. A running
# campaign is paused before it is archived, so an archive never cuts a send.
CAMPAIGN_TRANSITIONS: dict[str, frozenset[str]] = {
    C.DRAFT: frozenset({C.SCHEDULED, C.RUNNING, C.ARCHIVED}),
    C.SCHEDULED: frozenset({C.DRAFT, C.RUNNING, C.PAUSED, C.ARCHIVED}),
    C.RUNNING: frozenset({C.PAUSED, C.COMPLETED}),
    C.PAUSED: frozenset({C.RUNNING, C.COMPLETED, C.ARCHIVED}),
    C.COMPLETED: frozenset({C.ARCHIVED}),
    C.ARCHIVED: frozenset(),
}
CAMPAIGN_STATES = StateMachine(Campaign, CAMPAIGN_TRANSITIONS)

E = EnrollmentStatus
ENROLLMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    E.ACTIVE: frozenset({E.FINISHED, E.STOPPED}),
    E.FINISHED: frozenset(),
    E.STOPPED: frozenset(),
}
# Finishing the sequence is every enrollment's normal end; a stop (reply, bounce, unsubscribe,
# failure, suppression) is logged with its reason.
ENROLLMENT_STATES = StateMachine(
    CampaignLead, ENROLLMENT_TRANSITIONS, quiet=frozenset({(E.ACTIVE.value, E.FINISHED.value)})
)

S = MessageStatus
MESSAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    # A check that holds a message leaves it queued (stopped_by says why): no move.
    S.QUEUED: frozenset({S.SENDING, S.SKIPPED}),
    # Back to queued: a transient failure (retried) or a run that died before DATA.
    S.SENDING: frozenset({S.SENT, S.FAILED, S.BOUNCED, S.UNKNOWN, S.QUEUED}),
    # An operator resolves an unknown message: resend it, or accept it as sent.
    # A bounce read later from the mailbox (docs/inbound.md, "Actions") turns it bounced.
    S.UNKNOWN: frozenset({S.QUEUED, S.SENT, S.BOUNCED}),
    S.SENT: frozenset({S.BOUNCED}),
    S.FAILED: frozenset(),
    S.BOUNCED: frozenset(),
    S.SKIPPED: frozenset(),
}
MESSAGE_STATES = StateMachine(
    Message,
    MESSAGE_TRANSITIONS,
    quiet=frozenset(
        {
            (S.QUEUED.value, S.SENDING.value),
            (S.SENDING.value, S.SENT.value),
            (S.SENDING.value, S.QUEUED.value),
        }
    ),
)

IMPORT_TRANSITIONS: dict[str, frozenset[str]] = {
    ImportStatus.PENDING: frozenset({ImportStatus.RUNNING, ImportStatus.FAILED}),
    ImportStatus.RUNNING: frozenset({ImportStatus.COMPLETED, ImportStatus.FAILED}),
    ImportStatus.COMPLETED: frozenset(),
    ImportStatus.FAILED: frozenset(),
}
IMPORT_STATES = StateMachine(LeadImport, IMPORT_TRANSITIONS)
