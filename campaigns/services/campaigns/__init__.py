"""Campaign definition and lifecycle (docs: issue 5, item 3); sending is in campaigns.sending.

A campaign is editable (settings, steps, variants) only while it is a draft. Its status moves
only through `transition_to`, which locks the row and moves it through the one state-machine
helper (the table in `campaigns.lifecycles`, a row in the transition log) with an audit event in
the same transaction. Every function runs in the
tenant's schema and checks Area.CAMPAIGNS.

Modules: `access` (`list_campaigns`, `access_*`, the draft lock and the helpers every write
uses), `settings` (DEFAULTS, `_cleaned` and its helpers, `create_campaign`, `update_campaign`),
`steps` (`add_step`, `remove_step`, `add_variant`, `remove_variant`), `moves` (MOVES,
`transition_to` and its shortcuts, the public index sync, `delete_campaign`), `replies`
(`mark_lead_replied`).
"""

from __future__ import annotations

from campaigns.services.campaigns.access import (
    _actor,
    _email,
    _fail,
    _in_schema,
    _lock_draft,
    access_campaign,
    access_step,
    list_campaigns,
)
from campaigns.services.campaigns.moves import (
    _NEEDS_READY,
    MOVES,
    S,
    _index_running,
    _with_article,
    allowed_actions,
    archive_campaign,
    complete_campaign,
    delete_campaign,
    pause_campaign,
    readiness_problems,
    resume_campaign,
    schedule_campaign,
    start_campaign,
    transition_to,
)
from campaigns.services.campaigns.replies import REPLYABLE, _stop_on_reply, mark_lead_replied
from campaigns.services.campaigns.settings import (
    DEFAULTS,
    MAX_GAP_SECONDS,
    MAX_NAME_CHARS,
    _apply,
    _clean_pacing,
    _clean_targets,
    _clean_window,
    _cleaned,
    _ids,
    create_campaign,
    current_settings,
    update_campaign,
)
from campaigns.services.campaigns.steps import (
    MAX_STEPS,
    MAX_VARIANTS,
    _clean_variant,
    add_step,
    add_variant,
    remove_step,
    remove_variant,
)

__all__ = [
    "DEFAULTS",
    "MAX_GAP_SECONDS",
    "MAX_NAME_CHARS",
    "MAX_STEPS",
    "MAX_VARIANTS",
    "MOVES",
    "REPLYABLE",
    "S",
    "_NEEDS_READY",
    "_actor",
    "_apply",
    "_clean_pacing",
    "_clean_targets",
    "_clean_variant",
    "_clean_window",
    "_cleaned",
    "_email",
    "_fail",
    "_ids",
    "_in_schema",
    "_index_running",
    "_lock_draft",
    "_stop_on_reply",
    "_with_article",
    "access_campaign",
    "access_step",
    "add_step",
    "add_variant",
    "allowed_actions",
    "archive_campaign",
    "complete_campaign",
    "create_campaign",
    "current_settings",
    "delete_campaign",
    "list_campaigns",
    "mark_lead_replied",
    "pause_campaign",
    "readiness_problems",
    "remove_step",
    "remove_variant",
    "resume_campaign",
    "schedule_campaign",
    "start_campaign",
    "transition_to",
    "update_campaign",
]
