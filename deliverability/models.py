"""Sending domains and mailboxes (tenant schema): the domain, its DKIM key, its verification state
machine and the last verdict on each DNS record (docs/domains.md); mailboxes and theirs. Every
move is logged in the one transition log (docs/states.md)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from penguinmails.crypto import EncryptedTextField
from penguinmails.states import StateMachine


class DomainStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # added; records not checked yet
    VERIFYING = "verifying", "Verifying"  # a check was asked for and has not finished
    UNVERIFIED = "unverified", "Not verified"  # checked: a required record is missing or wrong
    VERIFIED = "verified", "Verified"  # every required record is right
    FAILING = "failing", "Failing"  # was verified, then a required record broke (flagged)


# The allowed moves; `penguinmails.states.transition` refuses anything else. A check
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
    complaints = models.PositiveIntegerField(default=0)  # spam complaints about its mail
    # Automatic protection's hold (docs/inbound.md): set, the send pipeline sends nothing from
    # the domain's mailboxes until a person resumes it. Its moves are logged with states.note.
    sending_paused_at = models.DateTimeField(null=True, blank=True)
    sending_paused_reason = models.CharField(max_length=500, blank=True)
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


DOMAIN_STATES = StateMachine(SendingDomain, DOMAIN_TRANSITIONS)


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


# --- Mailboxes (docs/mailboxes.md) ---------------------------------------------------------------
class MailboxKind(models.TextChoices):
    HOSTED = "hosted", "On our mail server"  # created through the tenant's MailServer
    GOOGLE = "google", "Google Workspace"
    MICROSOFT = "microsoft", "Microsoft 365"
    OTHER = "other", "Other provider"


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS"  # TLS from the first byte (465, 993)
    STARTTLS = "starttls", "STARTTLS"  # plain, then upgraded (587, 143)
    NONE = "none", "None"  # loopback sandbox only, in practice


class MailboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created, not yet set up on the mail server
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"  # by a person, or by the pool after consecutive failures
    FAILING = "failing", "Failing"  # set-up or connection test failed; not sent from
    UNUSABLE = "unusable", "Unusable"  # its password cannot be decrypted (key missing)
    DISABLED = "disabled", "Disabled"  # being removed from the mail server


# The allowed moves; `penguinmails.states.transition` refuses anything else.
# Any live state may become UNUSABLE: a key can go missing at any time.
MAILBOX_TRANSITIONS: dict[str, frozenset[str]] = {
    MailboxStatus.PENDING: frozenset(
        {MailboxStatus.ACTIVE, MailboxStatus.FAILING, MailboxStatus.UNUSABLE}
        | {MailboxStatus.DISABLED}
    ),
    MailboxStatus.ACTIVE: frozenset(
        {MailboxStatus.PAUSED, MailboxStatus.FAILING, MailboxStatus.UNUSABLE}
        | {MailboxStatus.DISABLED}
    ),
    MailboxStatus.PAUSED: frozenset(
        {MailboxStatus.ACTIVE, MailboxStatus.UNUSABLE, MailboxStatus.DISABLED}
    ),
    MailboxStatus.FAILING: frozenset(
        {MailboxStatus.ACTIVE, MailboxStatus.PAUSED, MailboxStatus.UNUSABLE}
        | {MailboxStatus.DISABLED}
    ),
    # Back to active only after a passing test (the keys were fixed or `secrets rotate` ran).
    MailboxStatus.UNUSABLE: frozenset({MailboxStatus.ACTIVE, MailboxStatus.DISABLED}),
    MailboxStatus.DISABLED: frozenset(),
}


class Mailbox(models.Model):
    """A mailbox the tenant sends from: created on the tenant's mail server (HOSTED) or connected
    from Google Workspace, Microsoft 365 or another provider. Passwords are encrypted at rest and
    never leave the server except to the SMTP/IMAP server they belong to. The health fields are
    written by connection tests and by the workers' SMTP pool."""

    address = models.EmailField(unique=True)  # lower-case
    display_name = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=16, choices=MailboxKind.choices)
    # The public infrastructure.MailServer of a HOSTED mailbox (an id, not a foreign key: the
    # row lives in the public schema and its lifecycle belongs to infrastructure).
    mail_server_id = models.BigIntegerField(null=True, blank=True)
    smtp_host = models.CharField(max_length=253)
    smtp_port = models.PositiveIntegerField()
    smtp_security = models.CharField(max_length=8, choices=Security.choices)
    smtp_username = models.CharField(max_length=254)
    smtp_password = EncryptedTextField()
    imap_host = models.CharField(max_length=253, blank=True)  # blank: no IMAP (sandbox)
    imap_port = models.PositiveIntegerField(null=True, blank=True)
    imap_security = models.CharField(max_length=8, choices=Security.choices, blank=True)
    imap_username = models.CharField(max_length=254, blank=True)
    imap_password = EncryptedTextField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=MailboxStatus.choices, default=MailboxStatus.PENDING
    )
    status_reason = models.CharField(max_length=500, blank=True)  # why it is in this status
    # Health record.
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_step = models.CharField(max_length=16, blank=True)  # dns, connect, tls, auth...
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=500, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    # Sends counted on `sent_on` (UTC date); a new day starts the count again.
    sent_on = models.DateField(null=True, blank=True)
    sent_today = models.PositiveIntegerField(default=0)
    # The inbound poller's place per folder: {folder: {"uidvalidity": n, "last_uid": n}}.
    inbound_cursor = models.JSONField(default=dict, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    complaints = models.PositiveIntegerField(default=0)  # spam complaints about its messages
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address


MAILBOX_STATES = StateMachine(Mailbox, MAILBOX_TRANSITIONS)


# --- Inbound mail (docs/inbound.md, "Reading mailboxes") -----------------------------------------
class InboundState(models.TextChoices):
    RECEIVED = "received", "Received"  # stored, not yet acted on
    PROCESSED = "processed", "Processed"  # classified and acted on (once)
    FAILED = "failed", "Failed"  # acting on it failed INBOUND_MAX_ATTEMPTS times; left alone


INBOUND_TRANSITIONS: dict[str, frozenset[str]] = {
    InboundState.RECEIVED: frozenset({InboundState.PROCESSED, InboundState.FAILED}),
    InboundState.PROCESSED: frozenset(),
    InboundState.FAILED: frozenset(),
}


class InboundMessage(models.Model):
    """One message read from a mailbox's folder, stored once per (mailbox, folder, uidvalidity,
    uid): the evidence of what was done about it. `raw` (zlib) is cleared after
    INBOUND_RAW_RETENTION_DAYS; the classification stays."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="inbound")
    folder = models.CharField(max_length=200)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    raw = models.BinaryField(null=True, blank=True)  # zlib-compressed message
    raw_size = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=500, blank=True)  # its own Message-ID header
    delivered_to = models.CharField(max_length=500, blank=True)  # the address it came to
    kind = models.CharField(max_length=16)  # deliverability.inbound.classify.Kind
    recipients = models.JSONField(default=list, blank=True)
    status_code = models.CharField(max_length=16, blank=True)  # first recipient's, "5.1.1"
    bounce_class = models.CharField(max_length=8, blank=True)  # hard | soft
    bounce_reason = models.CharField(max_length=64, blank=True)  # user_unknown, mailbox_full...
    matched_message_id = models.BigIntegerField(null=True, blank=True)  # campaigns.Message pk
    action = models.CharField(max_length=200, blank=True)  # what was done, in words
    status = models.CharField(
        max_length=16, choices=InboundState.choices, default=InboundState.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "folder", "uidvalidity", "uid"], name="inbound_once"
            )
        ]
        indexes = [
            models.Index(fields=["mailbox", "status"], name="inbound_pending_idx"),
            models.Index(fields=["received_at"], name="inbound_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.folder} {self.uid} ({self.kind})"


INBOUND_STATES = StateMachine(
    InboundMessage,
    INBOUND_TRANSITIONS,
    quiet=frozenset({(InboundState.RECEIVED.value, InboundState.PROCESSED.value)}),
)


# --- Sender rollups and automatic protection (docs/inbound.md, "Automatic protection") ---------
class SenderDailyStat(models.Model):
    """Per mailbox (with its domain and sending IP at the time) and UTC day: sends, bounces,
    complaints and replies. Bumped in the same transaction as the campaign rollups
    (`deliverability.services.sender_stats.add`, called by campaigns' `stats.bump`)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="daily_stats")
    domain = models.ForeignKey(
        SendingDomain, null=True, blank=True, on_delete=models.SET_NULL, related_name="daily_stats"
    )
    ip = models.CharField(max_length=45, blank=True)  # the sending IP, "" when unknown
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    replied = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "mailbox_id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "ip", "day"], name="sender_stat_once")
        ]
        indexes = [models.Index(fields=["domain", "day"], name="sender_stat_domain_idx")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.day}: {self.sent} sent"


class ProtectedKind(models.TextChoices):
    MAILBOX = "mailbox", "Mailbox"
    DOMAIN = "domain", "Sending domain"
    CAMPAIGN = "campaign", "Campaign"


class ProtectionLevel(models.TextChoices):
    OK = "ok", "OK"
    FLAGGED = "flagged", "Flagged"
    PAUSED = "paused", "Paused"


class ProtectionAction(models.TextChoices):
    FLAGGED = "flagged", "Flagged"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"


class ProtectionState(models.Model):
    """Where automatic protection stands on one mailbox, domain or campaign: its level, the
    figures that put it there, and the counts a resume acknowledged (`baseline`: the rollup
    sums up to the resume, subtracted from later evaluations so old figures never re-pause)."""

    kind = models.CharField(max_length=16, choices=ProtectedKind.choices)
    object_id = models.BigIntegerField()
    level = models.CharField(
        max_length=16, choices=ProtectionLevel.choices, default=ProtectionLevel.OK
    )
    reason = models.CharField(max_length=500, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    since = models.DateTimeField(null=True, blank=True)  # when it reached this level
    baseline = models.JSONField(default=dict, blank=True)  # {"day", "sent", "bounced", ...}

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="protection_state_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}: {self.level}"


class ProtectionEvent(models.Model):
    """One automatic flag or pause, or a person's resume: what, why, the figures, when."""

    kind = models.CharField(max_length=16, choices=ProtectedKind.choices)
    object_id = models.BigIntegerField()
    label = models.CharField(max_length=320)  # address, domain or campaign name at the time
    action = models.CharField(max_length=16, choices=ProtectionAction.choices)
    metric = models.CharField(max_length=16, blank=True)  # bounce | complaint
    rate = models.FloatField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    window_start = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    actor = models.CharField(max_length=254, blank=True)  # a person's email; "" is the system
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["kind", "object_id"], name="protection_event_obj_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} {self.action} at {self.at:%Y-%m-%d %H:%M}"
