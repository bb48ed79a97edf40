"""The shapes the read side returns: added-up counters with their rates, per variant, step, day,
campaign and tenant, and a campaign's progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass
from typing import Any

from campaigns.models import EnrollmentStatus, MessageStatus

# rate name -> (numerator, counters summed as the denominator). `sent` counts what a receiving
# server accepted (as the send pipeline bumps it) and `bounced` what it refused, at SMTP time or
# later, so sent + bounced is what reached a server; engagement is measured against delivered.
RATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "delivery_rate": ("delivered", ("sent", "bounced")),
    "open_rate": ("opened", ("delivered",)),
    "click_rate": ("clicked", ("delivered",)),
    "reply_rate": ("replied", ("delivered",)),
    "bounce_rate": ("bounced", ("sent", "bounced")),
    "unsubscribe_rate": ("unsubscribed", ("delivered",)),
    # Spam complaints (feedback loops), of what was accepted: the rate mailbox providers judge.
    "complaint_rate": ("complained", ("delivered",)),
}

IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)


@dataclass(frozen=True)
class Figures:
    """The counters of some rollup rows added up, and the rates derived from them."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    complained: int = 0
    machine_opened: int = 0
    machine_clicked: int = 0

    @classmethod
    def of(cls, values: Sequence[Any]) -> Figures:
        """From the COUNTERS columns in order (NULL sums count as 0)."""
        return cls(*(int(v or 0) for v in values))

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def rate(self, name: str) -> float | None:
        """A fraction in 0..1; None without a base."""
        numerator, denominator = RATES[name]
        base = sum(getattr(self, counter) for counter in denominator)
        return round(getattr(self, numerator) / base, 4) if base else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {name: self.rate(name) for name in RATES}

    @property
    def percents(self) -> dict[str, str]:
        """Rates as display text with one decimal ("12.5%"), "" without a base."""
        return {k: "" if v is None else f"{v * 100:.1f}%" for k, v in self.rates.items()}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rates": self.rates}


@dataclass(frozen=True)
class VariantStats:
    variant_id: int
    template_id: int
    template_name: str
    weight: int
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant_id": self.variant_id,
            "template_id": self.template_id,
            "template_name": self.template_name,
            "weight": self.weight,
            **self.figures.as_dict(),
        }


@dataclass(frozen=True)
class StepStats:
    step_id: int
    order: int
    figures: Figures
    variants: list[VariantStats]

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "order": self.order,
            **self.figures.as_dict(),
            "variants": [v.as_dict() for v in self.variants],
        }


@dataclass(frozen=True)
class Day:
    day: dt.date
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **asdict(self.figures)}


@dataclass(frozen=True)
class CampaignStats:
    """One campaign's numbers over `days` (None: all time), as shown on its page and by the API."""

    campaign_id: int
    name: str
    status: str
    days: int | None
    since: dt.date | None
    totals: Figures
    steps: list[StepStats]
    series: list[Day]

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            "days": self.days,
            "since": self.since.isoformat() if self.since else None,
            "totals": self.totals.as_dict(),
            "steps": [s.as_dict() for s in self.steps],
            "series": [d.as_dict() for d in self.series],
        }


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    status: str
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            **self.figures.as_dict(),
        }


@dataclass(frozen=True)
class Overview:
    """Every campaign of the tenant side by side, the tenant's totals and its daily series."""

    days: int | None
    since: dt.date | None
    totals: Figures
    campaigns: list[CampaignRow]
    series: list[Day]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since.isoformat() if self.since else None,
            "totals": self.totals.as_dict(),
            "campaigns": [c.as_dict() for c in self.campaigns],
            "series": [d.as_dict() for d in self.series],
        }


@dataclass(frozen=True)
class Progress:
    """Where a campaign stands now: messages by status and enrollments by status."""

    messages: dict[str, int]
    enrollments: dict[str, int]

    @property
    def enrolled(self) -> int:
        return sum(self.enrollments.values())

    @property
    def done(self) -> int:
        return self.enrolled - self.enrollments.get(EnrollmentStatus.ACTIVE, 0)

    @property
    def percent(self) -> int:
        return self.done * 100 // self.enrolled if self.enrolled else 0

    @property
    def in_flight(self) -> int:
        return sum(self.messages.get(s, 0) for s in IN_FLIGHT)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "enrollments": self.enrollments,
            "enrolled": self.enrolled,
            "done": self.done,
            "percent": self.percent,
        }
