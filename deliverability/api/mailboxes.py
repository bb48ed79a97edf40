"""REST API of mailboxes (thin: deliverability.services.mailboxes does the work).

/api/v1/mailboxes (list, create, retrieve, PATCH daily_limit, delete), POST
/api/v1/mailboxes/{id}/test (the live connection test's report), /pause and /resume. Passwords
are write-only: accepted on create, never in any response.

`sent_today` and `remaining_today` come from deliverability's allowance (docs/sending.md, "How
much a mailbox may send"): one allowance query for a whole page of the list, one for a single
mailbox.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deliverability.models import Mailbox, MailboxKind, ProtectedKind, Security
from deliverability.services import mailboxes as service
from deliverability.services import protection_state, sender_stats
from deliverability.services.allowance import Allowance, allowance_for
from deliverability.services.mailbox_probe import vet_servers
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet

SECURITY_HELP = "One of: " + ", ".join(Security.values) + "."


class MailboxSerializer(serializers.ModelSerializer):
    """A mailbox. Give it the allowance of its mailboxes as context["allowance"] (the viewset
    does, one query per page); without one, the counts are 0."""

    sent_today = serializers.SerializerMethodField(help_text="Sends counted today (UTC day).")
    remaining_today = serializers.SerializerMethodField(
        help_text="How many more it may send today: its daily limit (or warm-up allowance) less "
        "what it sent, capped by the plan's daily sends left; 0 unless active."
    )
    allowance_explanation = serializers.SerializerMethodField(
        help_text='Why its room is what it is, e.g. "12 of 40 today: day 6 of warm-up" ("" '
        "when no allowance was given)."
    )
    rates_30d = serializers.SerializerMethodField(
        help_text="Sent, bounced, complained, replied and their rates over the last 30 UTC days "
        "(docs/inbound.md, 'Rates')."
    )
    protection = serializers.SerializerMethodField(
        help_text="Automatic protection: {level: ok|flagged|paused, reason}."
    )
    smtp_security = serializers.CharField(read_only=True, help_text=SECURITY_HELP)
    imap_security = serializers.CharField(read_only=True, help_text=SECURITY_HELP)

    class Meta:
        model = Mailbox
        fields = [
            "id",
            "address",
            "display_name",
            "kind",
            "status",
            "status_reason",
            "daily_limit",
            "sent_today",
            "remaining_today",
            "allowance_explanation",
            "rates_30d",
            "protection",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "mail_server_id",
            "last_test_at",
            "last_test_ok",
            "last_error",
            "last_error_step",
            "consecutive_failures",
            "paused_reason",
            "last_sent_at",
            "created_at",
        ]
        read_only_fields = fields

    def _senders(self) -> tuple[dict[Any, Any], dict[int, Any]]:
        # Once per response (the context is shared by a page's rows): two queries, not 2 per row.
        if "_senders" not in self.context:
            self.context["_senders"] = (
                sender_stats.sender_figures("mailbox", days=30),
                protection_state.states_for(
                    ProtectedKind.MAILBOX, list(Mailbox.objects.values_list("pk", flat=True))
                ),
            )
        cached: tuple[dict[Any, Any], dict[int, Any]] = self.context["_senders"]
        return cached

    def get_rates_30d(self, mailbox: Mailbox) -> dict[str, Any]:
        figures = self._senders()[0].get(mailbox.pk) or sender_stats.SenderFigures()
        return figures.as_dict()

    def get_protection(self, mailbox: Mailbox) -> dict[str, str]:
        state = self._senders()[1].get(mailbox.pk)
        return (
            {"level": state.level, "reason": state.reason}
            if state
            else {"level": "ok", "reason": ""}
        )

    def _allowance(self) -> Allowance | None:
        return self.context.get("allowance")

    def get_sent_today(self, mailbox: Mailbox) -> int:
        allowance = self._allowance()
        room = allowance.mailboxes.get(mailbox.pk) if allowance is not None else None
        return room.sent if room is not None else 0

    def get_remaining_today(self, mailbox: Mailbox) -> int:
        allowance = self._allowance()
        return allowance.room(mailbox.pk) if allowance is not None else 0

    def get_allowance_explanation(self, mailbox: Mailbox) -> str:
        allowance = self._allowance()
        room = allowance.mailboxes.get(mailbox.pk) if allowance is not None else None
        return room.explanation if room is not None else ""


class MailboxCreateSerializer(serializers.Serializer):
    """`kind: hosted` creates the mailbox on the workspace's mail server (local_part + domain);
    any other kind connects an existing one after a live test (SMTP and IMAP settings)."""

    kind = serializers.ChoiceField(choices=MailboxKind.choices)
    display_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    daily_limit = serializers.IntegerField(required=False, min_value=1)
    local_part = serializers.CharField(max_length=64, required=False)
    domain = serializers.CharField(max_length=253, required=False)
    address = serializers.CharField(max_length=254, required=False)
    smtp_host = serializers.CharField(max_length=253, required=False)
    smtp_port = serializers.IntegerField(required=False)
    # Plain strings (the service validates them): one enum for both fields would get two names.
    smtp_security = serializers.CharField(required=False, help_text=SECURITY_HELP)
    smtp_username = serializers.CharField(max_length=254, required=False, allow_blank=True)
    smtp_password = serializers.CharField(
        max_length=500, required=False, write_only=True, style={"input_type": "password"}
    )
    imap_host = serializers.CharField(max_length=253, required=False)
    imap_port = serializers.IntegerField(required=False)
    imap_security = serializers.CharField(required=False, help_text=SECURITY_HELP)
    imap_username = serializers.CharField(max_length=254, required=False, allow_blank=True)
    imap_password = serializers.CharField(
        max_length=500, required=False, write_only=True, style={"input_type": "password"}
    )

    HOSTED_FIELDS = ("local_part", "domain")
    CONNECT_FIELDS = (
        "address",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_password",
        "imap_host",
        "imap_port",
        "imap_security",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed = self.HOSTED_FIELDS if attrs["kind"] == MailboxKind.HOSTED else self.CONNECT_FIELDS
        missing = {f: ["This field is required."] for f in needed if attrs.get(f) in (None, "")}
        if missing:
            raise serializers.ValidationError(missing)
        if attrs["kind"] != MailboxKind.HOSTED:
            # The outbound guard before any connection: private, loopback and metadata addresses
            # and odd ports are refused alike, whether or not anything listens there.
            refused = vet_servers(
                smtp_host=attrs["smtp_host"],
                smtp_port=attrs["smtp_port"],
                imap_host=attrs["imap_host"],
                imap_port=attrs["imap_port"],
            )
            if refused:
                raise serializers.ValidationError(refused)
        return attrs


class MailboxLimitSerializer(serializers.Serializer):
    daily_limit = serializers.IntegerField(min_value=1, max_value=service.MAX_DAILY_LIMIT)


class ProbeSerializer(serializers.Serializer):
    protocol = serializers.CharField()
    ok = serializers.BooleanField()
    step = serializers.CharField(help_text="dns, connect, tls, auth, or ok.")
    message = serializers.CharField()


class TestReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    smtp = ProbeSerializer()
    imap = ProbeSerializer(allow_null=True)
    mailbox = MailboxSerializer()


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


@extend_schema_view(
    create=extend_schema(request=MailboxCreateSerializer, responses={201: MailboxSerializer}),
    partial_update=extend_schema(request=MailboxLimitSerializer, responses=MailboxSerializer),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
    test=extend_schema(request=None, responses={200: TestReportSerializer}),
    pause=extend_schema(request=PauseSerializer, responses={200: MailboxSerializer}),
    resume=extend_schema(request=None, responses={200: MailboxSerializer}),
)
class MailboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's sending mailboxes with their status, limit and health."""

    queryset = Mailbox.objects.all()
    permission_area = Area.MAILBOXES
    serializer_class = MailboxSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Mailbox]:
        # Tenant-schema rows: the connection is on this tenant's schema, every row is its own.
        return Mailbox.objects.all()

    def _data(self, mailboxes: list[Mailbox]) -> Any:
        """The mailboxes' representation, with one allowance query for all of them."""
        allowance = allowance_for(self.tenant, [m.pk for m in mailboxes])
        context = {**self.get_serializer_context(), "allowance": allowance}
        return MailboxSerializer(mailboxes, many=True, context=context).data

    def _one(self, mailbox: Mailbox) -> Any:
        return self._data([mailbox])[0]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(self._data(list(page)))
        return Response(self._data(list(queryset)))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self._one(self.get_object()))

    def create(self, request: Request) -> Response:
        form = MailboxCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        if data["kind"] == MailboxKind.HOSTED:
            mailbox = service.create_mailbox(
                self.principal,
                **{
                    k: data[k]
                    for k in ("local_part", "domain", "display_name", "daily_limit")
                    if k in data
                },
            )
        else:
            for name in ("local_part", "domain"):
                data.pop(name, None)
            mailbox = service.connect_mailbox(self.principal, **data)
        return Response(self._one(mailbox), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        form = MailboxLimitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        mailbox = service.set_daily_limit(
            self.principal, self.get_object(), daily_limit=form.validated_data["daily_limit"]
        )
        return Response(self._one(mailbox))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        service.delete_mailbox(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        mailbox = self.get_object()
        report = service.test_mailbox(self.principal, mailbox)
        body = report.as_dict()
        body["summary"] = report.summary()
        body["mailbox"] = self._one(mailbox)
        return Response(body)

    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        form = PauseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        mailbox = service.pause_mailbox(
            self.principal, self.get_object(), reason=form.validated_data.get("reason") or ""
        )
        return Response(self._one(mailbox))

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        mailbox = service.resume_mailbox(self.principal, self.get_object())
        return Response(self._one(mailbox))
