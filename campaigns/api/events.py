"""REST API of tracking events (read-only; docs/tracking.md).

/api/v1/events: list and retrieve this tenant's message events (opens, clicks, unsubscribes,
and later bounces, complaints and replies), newest first; filters `campaign`, `message`, `kind`
and `is_machine` (machine opens and clicks are shown apart with their `machine_reason`).
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework import mixins, serializers

from campaigns.models import EventKind, MessageEvent
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


class EventFilter(django_filters.FilterSet):
    campaign = django_filters.NumberFilter(field_name="campaign_id", help_text="A campaign's id.")
    message = django_filters.NumberFilter(field_name="message_id", help_text="A message's id.")
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    is_machine = django_filters.BooleanFilter(
        help_text="true: proxies and scanners only; false: people only."
    )

    class Meta:
        model = MessageEvent
        fields = ["campaign", "message", "kind", "is_machine"]


class EventSerializer(serializers.ModelSerializer):
    message_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = MessageEvent
        fields = [
            "id",
            "message_id",
            "campaign_id",
            "kind",
            "at",
            "is_machine",
            "machine_reason",
            "url",
            "ip",
            "user_agent",
        ]
        read_only_fields = fields


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's message events, newest first."""

    queryset = MessageEvent.objects.all()
    permission_area = Area.CAMPAIGNS
    serializer_class = EventSerializer
    filterset_class = EventFilter

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[MessageEvent]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return MessageEvent.objects.order_by("-at", "-id")
