"""REST API of sent and queued messages (read-only; docs/sending.md, "Commands and API").

`GET /api/v1/messages` (filters `campaign`, `status`, `lead`, `step`; paginated; newest first),
`GET /api/v1/messages/{id}`, and the same list under `GET /api/v1/campaigns/{id}/messages`
(404 for a campaign the tenant does not have). Writes happen only in the send pipeline.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework import mixins, serializers

from campaigns.models import Message, MessageStatus
from campaigns.services.campaigns import access_campaign
from penguinmails.api.viewsets import TenantScopedViewSet
from tenants.models import Tenant
from tenants.permissions import Area


class MessageFilter(django_filters.FilterSet):
    campaign = django_filters.NumberFilter(field_name="campaign_id", help_text="A campaign's id.")
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)
    lead = django_filters.NumberFilter(field_name="lead_id", help_text="A lead's id.")
    step = django_filters.NumberFilter(field_name="step_id", help_text="A sequence step's id.")

    class Meta:
        model = Message
        fields = ["campaign", "status", "lead", "step"]


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "campaign",
            "step",
            "variant",
            "lead",
            "mailbox",
            "to_email",
            "status",
            "message_id",
            "subject",
            "scheduled_for",
            "attempts",
            "stopped_by",
            "stop_reason",
            "smtp_code",
            "smtp_response",
            "sent_at",
            "bounced_at",
            "first_opened_at",
            "first_clicked_at",
            "replied_at",
            "unsubscribed_at",
            "open_count",
            "click_count",
            "machine_open_count",
            "machine_click_count",
        ]
        read_only_fields = fields


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's campaign messages, newest first, with their delivery and tracking state."""

    queryset = Message.objects.all()
    permission_area = Area.CAMPAIGNS
    serializer_class = MessageSerializer
    filterset_class = MessageFilter

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Message]:
        # Tenant-schema rows: every row of the table is this tenant's.
        messages = Message.objects.order_by("-created_at", "-id")
        campaign_id = self.kwargs.get("campaign_id")
        if campaign_id is not None:  # /campaigns/{id}/messages: the campaign must be ours
            messages = messages.filter(campaign=access_campaign(self.principal, campaign_id))
        return messages
