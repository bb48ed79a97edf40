"""GET /api/v1/reputation: the latest reputation scores of this tenant's mailboxes (with
mailboxes read), sending domains (domains read) and IPs (infrastructure read), worst first, each
with its parts; Warm-up read needed. GET /api/v1/reputation/listings: the live blocklist
listings of its IPs (infrastructure read) and sending domains (domains read). Thin:
reputation.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reputation import scoring
from reputation.models import ReputationScore
from reputation.services import blocklists, scores
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedMixin


class ListingSerializer(serializers.Serializer):
    kind = serializers.CharField()
    subject = serializers.CharField()
    list_name = serializers.CharField()
    zone = serializers.CharField()
    answer = serializers.CharField()
    reason = serializers.CharField()
    listed_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    removal_url = serializers.CharField()


FIELDS = ("kind", "subject", "list_name", "zone", "answer", "reason", "listed_at", "last_seen_at")


class ListingsSerializer(serializers.Serializer):
    results = ListingSerializer(many=True)


class ListingsView(TenantScopedMixin, APIView):
    """This workspace's IPs and domains currently on a DNS blocklist, newest first."""

    # Either area shows its half; the permission checks the workspace membership only.
    permission_area = None

    @extend_schema(responses=ListingsSerializer, operation_id="reputation_listings")
    def get(self, request: Request) -> Response:
        principal = self.principal
        rows = blocklists.tenant_listings(
            self.tenant,
            ips=principal.allows(Area.INFRASTRUCTURE),
            domains=principal.allows(Area.DOMAINS),
        )
        urls = blocklists.removal_urls()
        data = [
            {**{f: getattr(r, f) for f in FIELDS},
             "removal_url": urls.get(r.zone, "")}
            for r in rows
        ]  # fmt: skip
        return Response(ListingsSerializer({"results": data}).data)


class PartSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    weight = serializers.IntegerField()
    points = serializers.IntegerField()
    why = serializers.CharField()


class ScoreSerializer(serializers.Serializer):
    kind = serializers.CharField()
    subject_id = serializers.IntegerField()
    subject = serializers.CharField()
    day = serializers.DateField()
    score = serializers.IntegerField()
    allowance_share = serializers.FloatField(
        help_text="Mailboxes: the share of their campaign allowance this score leaves (1: all)."
    )
    parts = PartSerializer(many=True)


class ScoresSerializer(serializers.Serializer):
    mailboxes = ScoreSerializer(many=True)
    domains = ScoreSerializer(many=True)
    ips = ScoreSerializer(many=True)


def _score(row: ReputationScore) -> dict[str, object]:
    return {
        "kind": row.kind,
        "subject_id": row.subject_id,
        "subject": row.subject,
        "day": row.day,
        "score": row.score,
        "allowance_share": scoring.allowance_share(row.score),
        "parts": row.parts,
    }


class ScoresView(TenantScopedMixin, APIView):
    """Each mailbox's, domain's and IP's latest score, worst first (what the principal's areas
    show; the others come back empty)."""

    permission_area = Area.WARMUP

    @extend_schema(responses=ScoresSerializer, operation_id="reputation_scores")
    def get(self, request: Request) -> Response:
        principal = self.principal
        found = scores.worst_first(self.tenant, ips=principal.allows(Area.INFRASTRUCTURE))
        body = {
            "mailboxes": [_score(r) for r in found.mailboxes]
            if principal.allows(Area.MAILBOXES)
            else [],
            "domains": [_score(r) for r in found.domains] if principal.allows(Area.DOMAINS) else [],
            "ips": [_score(r) for r in found.ips],
        }
        return Response(ScoresSerializer(body).data)
