"""GET /api/v1/reputation/listings: the live blocklist listings of this tenant's IPs (with
infrastructure read) and sending domains (with domains read). Thin: reputation.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reputation.services import blocklists
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
