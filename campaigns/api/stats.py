"""REST API of campaign statistics (thin: campaigns.services.stats reads the rollups).

GET /api/v1/campaigns/{id}/stats[?days=N]: totals, per step and variant with rates, the daily
series and the live progress of one campaign. GET /api/v1/stats/overview[?days=N]: every
campaign's totals, the tenant's totals and series. Numbers are defined in docs/analytics.md.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Campaign
from campaigns.services import campaigns as svc
from campaigns.services import stats
from deliverability.models import Mailbox, ProtectedKind, SendingDomain
from deliverability.services import protection_state, sender_stats
from tenants.permissions import Area
from tenants.rest.permissions import IsTenantMember
from tenants.rest.viewsets import TenantScopedMixin


class StatsQuery(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=stats.MAX_DAYS, required=False)


class SenderQuery(StatsQuery):
    by = serializers.ChoiceField(choices=sender_stats.GROUPS, default="mailbox")


def _days(request: Request) -> int | None:
    form = StatsQuery(data=request.query_params)
    form.is_valid(raise_exception=True)
    days: int | None = form.validated_data.get("days")
    return days


_DAYS = OpenApiParameter(
    "days", int, description=f"Only the last N UTC days, today included (1..{stats.MAX_DAYS})."
)


class _StatsView(TenantScopedMixin, APIView):
    permission_area = Area.CAMPAIGNS
    permission_classes = [IsTenantMember]

    def get_queryset(self) -> Any:  # pragma: no cover - spectacular introspection only
        return Campaign.objects.none()


class CampaignStatsView(_StatsView):
    """One campaign's numbers, from its daily rollups, and its progress now."""

    @extend_schema(
        parameters=[_DAYS], responses={200: OpenApiResponse(description="Campaign statistics.")}
    )
    def get(self, request: Request, campaign_id: str) -> Response:
        days = _days(request)
        campaign = svc.access_campaign(self.principal, campaign_id)
        body = stats.campaign_stats(self.principal, campaign, days=days).as_dict()
        body["progress"] = stats.progress(self.principal, campaign).as_dict()
        return Response(body)


class OverviewView(_StatsView):
    """Every campaign of the tenant side by side, with the tenant's totals and series."""

    @extend_schema(
        parameters=[_DAYS], responses={200: OpenApiResponse(description="Overview statistics.")}
    )
    def get(self, request: Request) -> Response:
        return Response(stats.overview(self.principal, days=_days(request)).as_dict())


_KINDS = {"mailbox": ProtectedKind.MAILBOX, "domain": ProtectedKind.DOMAIN}


class SenderStatsView(_StatsView):
    """Sent, bounced, complained and replied with their rates per mailbox, sending domain or
    sending IP (deliverability's sender rollups), and protection's flag or pause on each."""

    permission_area = Area.MAILBOXES

    @extend_schema(
        parameters=[
            _DAYS,
            OpenApiParameter("by", str, enum=list(sender_stats.GROUPS), description="Grouping."),
        ],
        responses={200: OpenApiResponse(description="Sender statistics.")},
    )
    def get(self, request: Request) -> Response:
        form = SenderQuery(data=request.query_params)
        form.is_valid(raise_exception=True)
        by: str = form.validated_data["by"]
        days: int | None = form.validated_data.get("days")
        figures = sender_stats.sender_figures(by, days=days)
        labels: dict[int | str, str] = {key: str(key) for key in figures}
        if by == "mailbox":
            labels |= dict(Mailbox.objects.filter(pk__in=figures).values_list("pk", "address"))
        elif by == "domain":
            labels |= dict(SendingDomain.objects.filter(pk__in=figures).values_list("pk", "name"))
        held = (
            protection_state.states_for(_KINDS[by], [int(k) for k in figures])
            if by in _KINDS
            else {}
        )
        rows = []
        for key, f in figures.items():
            state = held.get(int(key)) if by in _KINDS else None
            rows.append(
                {
                    "key": key,
                    "label": labels[key],
                    **f.as_dict(),
                    "protection": state.level if state else "ok",
                    "protection_reason": state.reason if state else "",
                }
            )
        return Response({"by": by, "days": days, "senders": rows})
