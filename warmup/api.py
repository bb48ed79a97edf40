"""GET/PATCH /api/v1/mailboxes/{id}/warmup: a mailbox's warm-up (docs/warmup.md, "Faces").
Reads need Warm-up read, PATCH Warm-up write (plan fields and `enabled`, the opt-in); bad input
is a 400 with field errors, another tenant's mailbox a 404. Thin: warmup.services.plan_settings.
The score is in GET /api/v1/reputation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deliverability.models import Mailbox
from penguinmails.errors import ValidationFailed
from tenants.rest.viewsets import TenantScopedMixin
from warmup.services import plan_settings
from warmup.services.plan_settings import Summary


class WarmupPlanSerializer(serializers.Serializer):
    status = serializers.CharField()
    status_reason = serializers.CharField()
    started_on = serializers.DateField()
    start_volume = serializers.IntegerField()
    daily_increase = serializers.IntegerField()
    target = serializers.IntegerField()
    reply_rate = serializers.IntegerField()
    weekend_percent = serializers.IntegerField()
    maintenance_volume = serializers.IntegerField()
    timezone = serializers.CharField()


PLAN_FIELDS = ("status", "status_reason", "started_on", *plan_settings.FIELDS)


class WarmupSerializer(serializers.Serializer):
    mailbox_id = serializers.IntegerField()
    address = serializers.EmailField()
    enabled = serializers.BooleanField(help_text="In the warm-up pool (plan not off).")
    plan = WarmupPlanSerializer(allow_null=True, help_text="null: never joined the pool.")
    day = serializers.IntegerField(allow_null=True, help_text="Day N of the ramp.")
    volume_today = serializers.IntegerField(help_text="Warm-up messages the ramp plans today.")
    sent_today = serializers.IntegerField()
    scheduled_today = serializers.IntegerField()
    inbox_30d = serializers.IntegerField()
    spam_30d = serializers.IntegerField()
    spam_share_30d = serializers.FloatField(allow_null=True)


class WarmupPatchSerializer(serializers.Serializer):
    """For the schema only: the service validates (field errors in the one error format)."""

    enabled = serializers.BooleanField(required=False)
    start_volume = serializers.IntegerField(required=False, min_value=1, max_value=200)
    daily_increase = serializers.IntegerField(required=False, min_value=0, max_value=100)
    target = serializers.IntegerField(required=False, min_value=1, max_value=500)
    reply_rate = serializers.IntegerField(required=False, min_value=0, max_value=100)
    weekend_percent = serializers.IntegerField(required=False, min_value=0, max_value=100)
    maintenance_volume = serializers.IntegerField(required=False, min_value=0, max_value=200)
    timezone = serializers.CharField(required=False)


def _body(mailbox: Mailbox, found: Summary) -> dict[str, Any]:
    plan = found.plan
    return {
        "mailbox_id": mailbox.pk,
        "address": mailbox.address,
        "enabled": found.enabled,
        "plan": None if plan is None else {f: getattr(plan, f) for f in PLAN_FIELDS},
        "day": found.day_number,
        "volume_today": found.volume_today,
        "sent_today": found.sent_today,
        "scheduled_today": found.scheduled_today,
        "inbox_30d": found.inbox_30d,
        "spam_30d": found.spam_30d,
        "spam_share_30d": found.spam_share_30d,
    }  # fmt: skip


class MailboxWarmupView(TenantScopedMixin, APIView):
    """A mailbox's warm-up: status, day N, today's sends, 30 days' placement; PATCH changes the
    plan or the opt-in."""

    # The service checks Warm-up (read or write) and the mailbox's own access.
    permission_area = None

    @extend_schema(responses=WarmupSerializer, operation_id="mailbox_warmup_retrieve")
    def get(self, request: Request, mailbox_id: int) -> Response:
        mailbox = plan_settings.access_warmup(self.principal, mailbox_id)
        return Response(WarmupSerializer(_body(mailbox, plan_settings.summary(mailbox))).data)

    @extend_schema(
        request=WarmupPatchSerializer,
        responses=WarmupSerializer,
        operation_id="mailbox_warmup_update",
    )
    def patch(self, request: Request, mailbox_id: int) -> Response:
        mailbox = plan_settings.access_warmup(self.principal, mailbox_id, write=True)
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send a JSON object.", fields={"body": ["A JSON object."]})
        plan_settings.update_warmup(self.principal, mailbox, request.data)
        return Response(WarmupSerializer(_body(mailbox, plan_settings.summary(mailbox))).data)
