"""Sending domains (tenant schema): the domain, its DKIM key, its verification state machine, the
transitions it went through and the last verdict on each DNS record (docs/domains.md)."""

from __future__ import annotations

from django.db import models

from penguinmails.crypto import EncryptedTextField


class DomainStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # added; records not checked yet
    VERIFYING = "verifying", "Verifying"  # a check was asked for and has not finished
    UNVERIFIED = "unverified", "Not verified"  # checked: a required record is missing or wrong
    VERIFIED = "verified", "Verified"  # every required record is right
    FAILING = "failing", "Failing"  # was verified, then a required record broke (flagged)


# The allowed moves; `deliverability.services.states.transition` refuses anything else. A check
# may settle a domain without passing through VERIFYING (scheduled checks, the command).
DOMAIN_TRANSITIONS: dict[str, frozenset[str]] = {
    DomainStatus.PENDING: frozenset(
        {DomainStatus.VERIFYING, DomainStatus.VERIFIED, DomainStatus.UNVERIFIED}
    ),
    DomainStatus.VERIFYING: frozenset(
        {DomainStatus.VERIFIED, DomainStatus.UNVERIFIED, DomainStatus.FAILING}
    ),
    DomainStatus.UNVERIFIED: frozenset({DomainStatus.VERIFYING, DomainStatus.VERIFIED}),
    DomainStatus.VERIFIED: frozenset({DomainStatus.VERIFYING, DomainStatus.FAILING}),
    DomainStatus.FAILING: frozenset({DomainStatus.VERIFYING, DomainStatus.VERIFIED}),
}


class SendingDomain(models.Model):
    """A domain the tenant sends from. Its DNS records are generated from these fields (and the
    tenant's sending IPs), so they are regenerated, never edited by hand."""

    name = models.CharField(max_length=253, unique=True)  # lower-case, IDNA (xn--) form
    tracking_host = models.CharField(max_length=253)
    dkim_selector = models.CharField(max_length=63)
    dkim_public_key = models.TextField()  # base64 DER, the DKIM record's `p=`
    # Secret: encrypted at rest, revealed only by the code that signs or hands it to Mailu.
    dkim_private_key = EncryptedTextField()
    dmarc_rua = models.EmailField()
    status = models.CharField(
        max_length=16, choices=DomainStatus.choices, default=DomainStatus.PENDING
    )
    verified_at = models.DateTimeField(null=True, blank=True)  # first time it verified
    flagged_at = models.DateTimeField(null=True, blank=True)  # when a verified domain broke
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    # The live verification job, for the dashboard's polling (a public Job id).
    check_job_id = models.BigIntegerField(null=True, blank=True)
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DomainTransition(models.Model):
    """One status change of a domain: the audit trail of its state machine."""

    domain = models.ForeignKey(SendingDomain, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=DomainStatus.choices)
    to_status = models.CharField(max_length=16, choices=DomainStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class RecordStatus(models.TextChoices):
    NOT_CHECKED = "not_checked", "Not checked yet"
    OK = "ok", "OK"
    MISSING = "missing", "Missing"
    WRONG = "wrong", "Wrong"
    UNCHECKED = "unchecked", "Could not check"  # DNS timeout or failure: retried later


class DomainRecord(models.Model):
    """A record the domain must publish (or, for PTR, an expectation) and the last verdict on
    it: what DNS answered and what to change. Replaced as a whole on every check."""

    domain = models.ForeignKey(SendingDomain, on_delete=models.CASCADE, related_name="records")
    position = models.PositiveSmallIntegerField()  # the order a person adds them in
    purpose = models.CharField(max_length=32)  # records.RecordPurpose
    type = models.CharField(max_length=8)
    name = models.CharField(max_length=253)
    value = models.TextField()
    priority = models.IntegerField(null=True, blank=True)
    ttl = models.IntegerField()
    note = models.CharField(max_length=300, blank=True)
    required = models.BooleanField()  # whether it decides verified / failing
    status = models.CharField(
        max_length=16, choices=RecordStatus.choices, default=RecordStatus.NOT_CHECKED
    )
    found = models.JSONField(default=list)
    fix = models.TextField(blank=True)  # the verifier's message: what is wrong and the new value
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "position"], name="domain_record_position")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}"
