"""REST API of the unified inbox (docs/inbound.md, "Unified inbox").

`GET /api/v1/inbox` (filters `campaign`, `mailbox`, `label`, `unread`; newest first; paginated),
`GET /api/v1/inbox/{id}` (the reply in full with the message it answers and the answers sent),
`POST /api/v1/inbox/{id}/label {"label": ...}`, `POST /api/v1/inbox/{id}/read {"read": bool}`,
`POST /api/v1/inbox/{id}/reply {"body": ...}` (sent from the same mailbox over SMTP).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import InboxLabel
from campaigns.services import inbox as svc
from deliverability.models import InboundMessage
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


class InboxFilter(django_filters.FilterSet):
    campaign = django_filters.NumberFilter(method="_campaign", help_text="A campaign's id.")
    mailbox = django_filters.NumberFilter(field_name="mailbox_id", help_text="A mailbox's id.")
    label = django_filters.ChoiceFilter(choices=InboxLabel.choices, method="_label")
    unread = django_filters.BooleanFilter(method="_unread", help_text="Only unread (or read).")

    class Meta:
        model = InboundMessage
        fields = ["campaign", "mailbox", "label", "unread"]

    def _campaign(self, rows: QuerySet[InboundMessage], name: str, value: Any) -> Any:
        return svc.filter_inbox(rows, campaign=int(value))

    def _label(self, rows: QuerySet[InboundMessage], name: str, value: Any) -> Any:
        return svc.filter_inbox(rows, label=str(value))

    def _unread(self, rows: QuerySet[InboundMessage], name: str, value: Any) -> Any:
        return rows if value is None else svc.filter_inbox(rows, unread=bool(value))


class ThreadMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    campaign = serializers.IntegerField(source="campaign_id")
    campaign_name = serializers.CharField(source="campaign.name")
    step = serializers.IntegerField(source="step_id")
    step_order = serializers.IntegerField(source="step.order")
    subject = serializers.CharField()
    to_email = serializers.CharField()
    message_id = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)


class SentReplySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    to_email = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    message_id = serializers.CharField()
    in_reply_to = serializers.CharField()
    references = serializers.CharField()
    sent_by_email = serializers.CharField()
    sent_at = serializers.DateTimeField()


class InboxItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    mailbox = serializers.IntegerField(source="inbound.mailbox_id")
    mailbox_address = serializers.CharField(source="inbound.mailbox.address")
    from_address = serializers.CharField()
    from_name = serializers.CharField()
    subject = serializers.CharField()
    snippet = serializers.CharField()
    received_at = serializers.DateTimeField(source="inbound.received_at")
    read = serializers.BooleanField()
    label = serializers.CharField()  # type: ignore[assignment]  # the stubs mistake it for Field.label
    suggested_label = serializers.CharField()
    message = ThreadMessageSerializer(allow_null=True)


class InboxDetailSerializer(InboxItemSerializer):
    body = serializers.CharField()
    replies = SentReplySerializer(many=True)


class LabelSerializer(serializers.Serializer):
    label = serializers.ChoiceField(  # type: ignore[assignment]  # stubs: Field.label
        choices=[("", "(none)"), *InboxLabel.choices], allow_blank=True, help_text='"" clears it.'
    )


class ReadSerializer(serializers.Serializer):
    read = serializers.BooleanField(default=True)


class ReplySerializer(serializers.Serializer):
    body = serializers.CharField(max_length=100_000)


class InboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Replies and auto-replies across this tenant's mailboxes and campaigns, newest first."""

    queryset = InboundMessage.objects.all()
    permission_area = Area.CAMPAIGNS
    serializer_class = InboxItemSerializer
    filterset_class = InboxFilter

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[InboundMessage]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return svc.inbox_queryset()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(rows)
        items = svc.hydrate(list(page if page is not None else rows))
        data = InboxItemSerializer(items, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(responses={200: InboxDetailSerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(InboxDetailSerializer(self._item()).data)

    def _item(self) -> svc.InboxItem:
        return svc.access_inbox_item(self.principal, self.kwargs["pk"])

    @extend_schema(request=LabelSerializer, responses={200: InboxDetailSerializer})
    @action(detail=True, methods=["post"])
    def label(self, request: Request, pk: str | None = None) -> Response:
        """Label the reply (interested, not_interested, meeting_booked, ...); "" clears it."""
        form = LabelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        item = svc.label_reply(self.principal, self._item(), label=form.validated_data["label"])
        return Response(InboxDetailSerializer(item).data)

    @extend_schema(request=ReadSerializer, responses={200: InboxDetailSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark the reply read (or unread with {"read": false})."""
        form = ReadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        item = svc.mark_read(self.principal, self._item(), read=form.validated_data["read"])
        return Response(InboxDetailSerializer(item).data)

    @extend_schema(request=ReplySerializer, responses={201: SentReplySerializer})
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str | None = None) -> Response:
        """Answer from the mailbox the reply came to, in the prospect's thread."""
        form = ReplySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        answer = svc.send_reply(self.principal, self._item(), body=form.validated_data["body"])
        return Response(SentReplySerializer(answer).data, status=201)
