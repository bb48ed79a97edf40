"""REST API of sent and queued messages (docs/sending.md, "Commands and API").

`GET /api/v1/messages` (filters `campaign`, `status`, `lead`, `step`; paginated; newest first),
`GET /api/v1/messages/{id}`, and the same list under `GET /api/v1/campaigns/{id}/messages`
(404 for a campaign the tenant does not have). The one write: `POST
/api/v1/messages/{id}/resolve {"action": "resend"|"accept"}` for an `unknown` message (409 for
any other status); everything else about a message changes only in the send pipeline.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import Message, MessageStatus
from campaigns.sending.resolution import Resolution, resolve_unknown_message
from campaigns.services.campaigns import access_campaign
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


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


class ResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[(r.value, r.value) for r in Resolution],
        help_text="resend: queued again with the same Message-ID; accept: counted as sent.",
    )


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

    @extend_schema(request=ResolveSerializer, responses={200: MessageSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Resolve an `unknown` message: resend it (same Message-ID) or accept it as sent."""
        form = ResolveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        message = resolve_unknown_message(
            self.principal,
            self.get_object(),
            action=form.validated_data["action"],
            via="api",
        )
        return Response(MessageSerializer(message).data)
