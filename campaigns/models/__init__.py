"""Campaigns app (tenant schema): email templates, leads, campaigns, what sending records and the
daily stats. Django finds the models through this module, so every model is imported here.

Modules: `templates` (EmailTemplate), `leads` (leads, lists, suppressions, CSV imports),
`campaigns` (Campaign, its steps and variants), `messages` (enrollments, messages, their events),
`stats` (CampaignDailyStat, CampaignStatusCount).
"""

from __future__ import annotations

from campaigns.models.campaigns import (
    Campaign,
    CampaignStatus,
    DelayUnit,
    SequenceStep,
    StepVariant,
    _weekdays,  # migration 0003 names it as campaigns.models._weekdays
)
from campaigns.models.inbox import InboxEvent, InboxLabel, InboxReply, InboxState
from campaigns.models.leads import (
    LEAD_FIELDS,
    DuplicatePolicy,
    ImportStatus,
    Lead,
    LeadImport,
    LeadImportError,
    LeadList,
    LeadListMember,
    LeadStatus,
    RowOutcome,
    Suppression,
    SuppressionReason,
)
from campaigns.models.messages import (
    CampaignLead,
    EnrollmentStatus,
    EventKind,
    Message,
    MessageEvent,
    MessageStatus,
    StoppedBy,
)
from campaigns.models.stats import CampaignDailyStat, CampaignStatusCount, CountKind
from campaigns.models.templates import EmailTemplate

__all__ = [
    "LEAD_FIELDS",
    "InboxEvent",
    "InboxLabel",
    "InboxReply",
    "InboxState",
    "Campaign",
    "CampaignDailyStat",
    "CampaignLead",
    "CampaignStatusCount",
    "CampaignStatus",
    "CountKind",
    "DelayUnit",
    "DuplicatePolicy",
    "EmailTemplate",
    "EnrollmentStatus",
    "EventKind",
    "ImportStatus",
    "Lead",
    "LeadImport",
    "LeadImportError",
    "LeadList",
    "LeadListMember",
    "LeadStatus",
    "Message",
    "MessageEvent",
    "MessageStatus",
    "RowOutcome",
    "SequenceStep",
    "StepVariant",
    "StoppedBy",
    "Suppression",
    "SuppressionReason",
    "_weekdays",
]
