"""Reputation models. The app is in SHARED_APPS and TENANT_APPS, so every table below exists in
public and in each tenant schema; which copy is used is fixed per model and per subject
(docs/reputation.md, "Where the rows live"):

| model | public schema | tenant schema |
| --- | --- | --- |
| `Blocklist` | the one list of DNS blocklists, edited by staff | unused (empty) |
| `Listing` | IP listings (beside the IPs, infrastructure) | the tenant's domain listings |
| `BlocklistCheck` | each IP's check schedule and last verdicts | each sending domain's |
| `ReputationScore` | unused (empty) | the daily scores of its mailboxes, domains and IPs |

Public rows are always read and written under `schema_context("public")`
(`reputation.services.blocklists.public_schema`): with a tenant's schema first on the search
path the tenant's empty copy would otherwise answer. Nothing here has a foreign key to another
app's table or across schemas: subjects are referred to by id and text.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from penguinmails.states import StateMachine


class BlocklistKind(models.TextChoices):
    IP = "ip", "IP addresses"  # queried as <reversed address>.<zone>
    DOMAIN = "domain", "Domains"  # queried as <domain>.<zone>


class Blocklist(models.Model):
    """A DNS blocklist we check against (public schema only): staff add, weigh, disable and
    edit them in the admin. The weight (1-100) is how much a listing on it counts toward a
    reputation score; `removal_url` is where a listed owner asks to be removed."""

    name = models.CharField(max_length=100)
    zone = models.CharField(max_length=253, unique=True)  # e.g. zen.spamhaus.org, no dots around
    kind = models.CharField(max_length=8, choices=BlocklistKind.choices)
    weight = models.PositiveSmallIntegerField(default=50)
    removal_url = models.URLField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    notes = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "-weight", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gte=1, weight__lte=100), name="blocklist_weight_1_100"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.zone})"


class ListingStatus(models.TextChoices):
    LISTED = "listed", "Listed"
    DELISTED = "delisted", "Delisted"  # the list answered "not listed" again


LISTING_TRANSITIONS: dict[str, frozenset[str]] = {
    ListingStatus.LISTED: frozenset({ListingStatus.DELISTED}),
    # A new listing after a delisting is a new row: its "since" starts again.
    ListingStatus.DELISTED: frozenset(),
}


class Listing(models.Model):
    """One subject (an IP in public, a sending domain in the tenant's schema) found on one
    blocklist, from the check that first saw it until the check that saw it gone."""

    kind = models.CharField(max_length=8, choices=BlocklistKind.choices)
    subject = models.CharField(max_length=253)  # the address or the domain name
    # infrastructure.IpAddress id (public) or deliverability.SendingDomain id (tenant schema).
    subject_id = models.BigIntegerField(null=True, blank=True)
    # The tenant the subject belonged to when listed (IPs; a domain's is its schema's).
    tenant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    zone = models.CharField(max_length=253)
    list_name = models.CharField(max_length=100)
    answer = models.CharField(max_length=200)  # the A records, comma-separated (127.0.0.x)
    reason = models.TextField(blank=True)  # the list's TXT record, if it gave one
    status = models.CharField(
        max_length=10, choices=ListingStatus.choices, default=ListingStatus.LISTED
    )
    listed_at = models.DateTimeField(default=timezone.now)  # since (our first sight)
    last_seen_at = models.DateTimeField(default=timezone.now)
    delisted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-listed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject", "zone"],
                condition=models.Q(status="listed"),
                name="listing_one_live_per_list",
            )
        ]
        indexes = [models.Index(fields=["kind", "subject", "status"], name="listing_subject_idx")]

    def __str__(self) -> str:
        return f"{self.subject} on {self.zone}"


LISTING_STATES = StateMachine(Listing, LISTING_TRANSITIONS)


class BlocklistCheck(models.Model):
    """When a subject (IP in public, sending domain in the tenant's schema) is next checked,
    when it last was, and each list's last verdict (`{zone: listed|clean|refused|unknown}`).
    `quarantined` is set when a listing made us quarantine the IP, so only that quarantine is
    lifted when every list is clear again (a staff quarantine is left alone)."""

    kind = models.CharField(max_length=8, choices=BlocklistKind.choices)
    subject = models.CharField(max_length=253)
    subject_id = models.BigIntegerField(null=True, blank=True)
    tenant_id = models.BigIntegerField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    verdicts = models.JSONField(default=dict, blank=True)
    quarantined = models.BooleanField(default=False)

    class Meta:
        ordering = ["next_check_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="blocklist_check_once")
        ]

    def __str__(self) -> str:
        return f"{self.subject} next {self.next_check_at:%Y-%m-%d %H:%M}"


class ScoreKind(models.TextChoices):
    MAILBOX = "mailbox", "Mailbox"  # subject_id: deliverability.Mailbox
    DOMAIN = "domain", "Sending domain"  # subject_id: deliverability.SendingDomain
    IP = "ip", "IP address"  # subject_id: infrastructure.IpAddress (the tenant's)


class ReputationScore(models.Model):
    """One subject's reputation (0-100) on one UTC day, in the tenant's schema (the public copy
    is unused), with the parts it is made of (`parts`: a list of {name, value, weight, points,
    why}, reputation.scoring). Recomputed during the day, one row per subject and day: the
    history the pages chart. The capacity module reads the latest mailbox score
    (docs/reputation.md, "Reputation score")."""

    kind = models.CharField(max_length=8, choices=ScoreKind.choices)
    subject_id = models.BigIntegerField()
    subject = models.CharField(max_length=320)  # the address, domain name or IP when scored
    day = models.DateField()
    score = models.PositiveSmallIntegerField()
    parts = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "kind", "score"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject_id", "day"], name="reputation_score_once_a_day"
            ),
            models.CheckConstraint(
                condition=models.Q(score__lte=100), name="reputation_score_0_100"
            ),
        ]
        indexes = [models.Index(fields=["day", "kind"], name="reputation_score_day_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} {self.day}: {self.score}"
