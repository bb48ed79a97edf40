"""The reputation history pages' reads: one sending domain's or one IP's daily scores, found
through the principal (another tenant's domain or IP is unknown here: NotFound, a 404)."""

from __future__ import annotations

from dataclasses import dataclass

from deliverability.services.domains import access_domain
from infrastructure.models import IpAddress, IpStatus
from penguinmails.errors import NotFound
from reputation.models import ReputationScore, ScoreKind
from reputation.services.scores import history
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require

DAYS = 30


@dataclass(frozen=True)
class SubjectHistory:
    """What a history page shows: the subject, its kind, its daily scores (oldest first)."""

    kind: str
    subject_id: int
    name: str
    rows: list[ReputationScore]

    @property
    def latest(self) -> ReputationScore | None:
        return self.rows[-1] if self.rows else None


def domain_history(principal: Principal, domain_id: int) -> SubjectHistory:
    """A sending domain of the principal's tenant (Domains read) and its last 30 days."""
    domain = access_domain(principal, domain_id)
    rows = history(ScoreKind.DOMAIN, domain.pk, days=DAYS)
    return SubjectHistory(ScoreKind.DOMAIN, domain.pk, domain.name, rows)


def ip_history(principal: Principal, ip_id: int) -> SubjectHistory:
    """An IP of the principal's tenant, not released (Infrastructure read), and its last 30
    days."""
    require(principal, Area.INFRASTRUCTURE, Level.READ)
    ip = (
        IpAddress.objects.filter(pk=ip_id, tenant_id=principal.tenant.pk)
        .exclude(status=IpStatus.RELEASED)
        .first()
    )
    if ip is None:
        raise NotFound("No such IP address.")
    rows = history(ScoreKind.IP, ip.pk, days=DAYS)
    return SubjectHistory(ScoreKind.IP, ip.pk, str(ip.address or ""), rows)
