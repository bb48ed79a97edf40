"""Sending infrastructure (public schema, with a tenant FK): VPS instances, IP addresses, mail
servers, and their state machines (docs/infrastructure.md; the log is docs/states.md).

These rows live in the public schema because staff manage servers across tenants and a server
outlives a tenant's schema being dropped; every tenant-facing read filters by `tenant`.
"""

from __future__ import annotations

from django.db import models

from penguinmails.crypto import EncryptedTextField
from penguinmails.states import StateMachine


class VpsStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # row created, create step enqueued
    CREATING = "creating", "Creating"  # the order goes out to the provider
    WAITING_ACTIVE = "waiting_active", "Waiting for active"  # ordered, building/booting
    CONFIGURING = "configuring", "Configuring"  # cloud-init installs Docker and Mailu
    NETWORK = "network", "Network"  # secondary IPs and PTR records
    MAIL_SERVER_CHECK = "mail_server_check", "Mail server check"  # Mailu's API answers
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATING = "terminating", "Terminating"
    TERMINATED = "terminated", "Terminated"
    FAILED = "failed", "Failed"


# Provisioning moves forward one step at a time; any step may fail; a failed VPS may be retried
# (back to requested, the create step finds its server by name) or terminated.
_V = VpsStatus
VPS_TRANSITIONS: dict[str, frozenset[str]] = {
    _V.REQUESTED: frozenset({_V.CREATING, _V.FAILED, _V.TERMINATING}),
    _V.CREATING: frozenset({_V.WAITING_ACTIVE, _V.FAILED, _V.TERMINATING}),
    _V.WAITING_ACTIVE: frozenset({_V.CONFIGURING, _V.FAILED, _V.TERMINATING}),
    _V.CONFIGURING: frozenset({_V.NETWORK, _V.FAILED, _V.TERMINATING}),
    _V.NETWORK: frozenset({_V.MAIL_SERVER_CHECK, _V.FAILED, _V.TERMINATING}),
    _V.MAIL_SERVER_CHECK: frozenset({_V.ACTIVE, _V.FAILED, _V.TERMINATING}),
    _V.ACTIVE: frozenset({_V.SUSPENDED, _V.TERMINATING, _V.FAILED}),
    _V.SUSPENDED: frozenset({_V.ACTIVE, _V.TERMINATING}),
    _V.TERMINATING: frozenset({_V.TERMINATED, _V.FAILED}),
    _V.TERMINATED: frozenset(),
    _V.FAILED: frozenset({_V.REQUESTED, _V.TERMINATING}),
}
# Statuses in which provisioning is still under way (the dashboard polls while any VPS is in one).
VPS_IN_PROGRESS = frozenset(
    {
        _V.REQUESTED,
        _V.CREATING,
        _V.WAITING_ACTIVE,
        _V.CONFIGURING,
        _V.NETWORK,
        _V.MAIL_SERVER_CHECK,
        _V.TERMINATING,
    }
)
# The order of the provisioning steps, for progress bars ("step 3 of 7").
VPS_STEPS: tuple[str, ...] = (
    _V.REQUESTED,
    _V.CREATING,
    _V.WAITING_ACTIVE,
    _V.CONFIGURING,
    _V.NETWORK,
    _V.MAIL_SERVER_CHECK,
    _V.ACTIVE,
)


class VpsInstance(models.Model):
    """One server at a VPS provider, bought for one tenant, that runs its mail server."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="vps_instances"
    )
    provider = models.CharField(max_length=32)  # a penguinmails.providers.VpsProviderName
    # Set as soon as the provider tells us, so a re-run step finds the server instead of buying.
    provider_id = models.CharField(max_length=64, blank=True, db_index=True)
    # Stable and unique: the provider's idempotency key for create_server.
    name = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=253)  # mail.<...>: Mailu's HOSTNAMES, the PTR target
    size = models.CharField(max_length=32)  # the plan's vps_size
    location = models.CharField(max_length=64, blank=True)
    main_ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=VpsStatus.choices, default=VpsStatus.REQUESTED, db_index=True
    )
    # Secrets the server was configured with; encrypted, never shown or logged.
    mailu_api_token = EncryptedTextField(null=True, blank=True)
    mailu_secret_key = EncryptedTextField(null=True, blank=True)
    # False when the provider could not take cloud-init user data: staff must configure the
    # server another way (docs/infrastructure.md); provisioning continues and the flag shows.
    user_data_applied = models.BooleanField(default=True)
    needs_attention = models.CharField(max_length=500, blank=True)
    # Addresses this server carries for the tenant (its main IP included), from the plan's
    # dedicated_ips shared across its servers when provisioning was asked for.
    ip_quota = models.PositiveSmallIntegerField(default=1)
    monthly_cost_cents = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # How many times "wait for active" has polled; bounded (see services.provisioning).
    polls = models.PositiveIntegerField(default=0)
    # The live step job, for the dashboard's polling (a public Job id).
    step_job_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "created_at", "id"]
        verbose_name = "VPS instance"

    def __str__(self) -> str:
        return self.name

    @property
    def monthly_cost(self) -> str:
        return f"${self.monthly_cost_cents / 100:,.2f}"

    @property
    def in_progress(self) -> bool:
        return self.status in VPS_IN_PROGRESS

    @property
    def step_number(self) -> int:
        """1-based position in VPS_STEPS, 0 when off the provisioning path."""
        return VPS_STEPS.index(self.status) + 1 if self.status in VPS_STEPS else 0


VPS_STATES = StateMachine(VpsInstance, VPS_TRANSITIONS)


class IpStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # wanted by the plan, not yet at the provider
    AWAITING_ORDER = "awaiting_order", "Awaiting order"  # the API cannot order it: staff must
    ASSIGNED = "assigned", "Assigned"  # on the server, assigned to the tenant
    WARMING = "warming", "Warming"  # sending at warm-up volumes
    ACTIVE = "active", "Active"  # sending at full volume
    QUARANTINED = "quarantined", "Quarantined"  # taken out of sending (blacklist, complaints)
    RELEASED = "released", "Released"  # given back (server terminated or IP dropped)


_I = IpStatus
IP_TRANSITIONS: dict[str, frozenset[str]] = {
    _I.REQUESTED: frozenset({_I.AWAITING_ORDER, _I.ASSIGNED, _I.RELEASED}),
    _I.AWAITING_ORDER: frozenset({_I.ASSIGNED, _I.RELEASED}),
    _I.ASSIGNED: frozenset({_I.WARMING, _I.ACTIVE, _I.QUARANTINED, _I.RELEASED}),
    _I.WARMING: frozenset({_I.ACTIVE, _I.QUARANTINED, _I.RELEASED}),
    _I.ACTIVE: frozenset({_I.WARMING, _I.QUARANTINED, _I.RELEASED}),
    _I.QUARANTINED: frozenset({_I.ASSIGNED, _I.WARMING, _I.RELEASED}),
    _I.RELEASED: frozenset(),
}
# IPs mail may go out from (the SPF record and the sending path use these).
IP_SENDING = frozenset({_I.ASSIGNED, _I.WARMING, _I.ACTIVE})


class IpRole(models.TextChoices):
    SENDING = "sending", "Sending"  # mail goes out from it
    STANDBY = "standby", "Standby"  # clean spare; the emergency procedure moves sending onto it


class IpAddress(models.Model):
    """One IPv4 address of a VPS, assigned to a tenant."""

    vps = models.ForeignKey(VpsInstance, on_delete=models.PROTECT, related_name="ips")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="ips")
    # Null while awaiting order: the address is not known until the IP appears at the provider.
    address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    is_primary = models.BooleanField(default=False)
    role = models.CharField(max_length=16, choices=IpRole.choices, default=IpRole.SENDING)
    status = models.CharField(
        max_length=20, choices=IpStatus.choices, default=IpStatus.REQUESTED, db_index=True
    )
    ptr_hostname = models.CharField(max_length=253, blank=True)
    ptr_set = models.BooleanField(default=False)
    # 0-100, higher is better; fed later by blacklist and bounce monitoring.
    reputation_score = models.PositiveSmallIntegerField(default=100)
    monthly_cost_cents = models.PositiveIntegerField(default=0)
    quarantine_reason = models.CharField(max_length=500, blank=True)
    # Where this IP's sending went by the emergency procedure (see services.ips.migrate_ip).
    replaced_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vps_id", "-is_primary", "id"]
        verbose_name = "IP address"
        constraints = [
            # One live row per address; released rows keep their history.
            models.UniqueConstraint(
                fields=["address"],
                condition=~models.Q(status=IpStatus.RELEASED),
                name="infra_ip_unique_live_address",
            )
        ]

    def __str__(self) -> str:
        return self.address or f"(awaiting order for {self.vps})"

    @property
    def monthly_cost(self) -> str:
        return f"${self.monthly_cost_cents / 100:,.2f}"


IP_STATES = StateMachine(IpAddress, IP_TRANSITIONS)


class MailServerKind(models.TextChoices):
    MAILU = "mailu", "Mailu"
    # The local stand-in when the VPS provider is local: SMTP on settings.SANDBOX_SMTP_HOST/PORT,
    # no admin API.
    SANDBOX = "sandbox", "Sandbox"


class MailServerStatus(models.TextChoices):
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    UNREACHABLE = "unreachable", "Unreachable"
    RETIRED = "retired", "Retired"


class MailServer(models.Model):
    """A mail server where mailboxes live: a tenant's own (Mailu on its VPS, or the sandbox), or
    a platform-owned `shared` one (no tenant) used by plans without dedicated servers."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        related_name="mail_servers",
        null=True,
        blank=True,
    )
    # Platform-owned and used by every tenant whose plan has no server of its own
    # (services.mailservers.mail_server_for); never listed on a tenant's Infrastructure page.
    shared = models.BooleanField(default=False)
    vps = models.ForeignKey(
        VpsInstance,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mail_servers",
    )
    kind = models.CharField(max_length=16, choices=MailServerKind.choices)
    hostname = models.CharField(max_length=253)
    api_url = models.CharField(max_length=300, blank=True)  # Mailu's /api/v1 base; blank: sandbox
    api_token = EncryptedTextField(null=True, blank=True)  # Mailu API token; None for sandbox
    smtp_host = models.CharField(max_length=253)
    smtp_port = models.PositiveIntegerField(default=587)
    imap_host = models.CharField(max_length=253, blank=True)
    imap_port = models.PositiveIntegerField(default=993)
    status = models.CharField(
        max_length=16,
        choices=MailServerStatus.choices,
        default=MailServerStatus.PROVISIONING,
        db_index=True,
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "created_at", "id"]
        constraints = [
            # One mail server per VPS: the mail-server check step re-running finds it.
            models.UniqueConstraint(fields=["vps"], name="infra_mailserver_one_per_vps"),
            # A server is either one tenant's or shared by the platform, never both or neither.
            models.CheckConstraint(
                condition=models.Q(shared=True, tenant__isnull=True)
                | models.Q(shared=False, tenant__isnull=False),
                name="infra_mailserver_shared_xor_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.kind})"


_MS = MailServerStatus
# A server answers or not; a retired one takes no new mailboxes and never comes back.
MAIL_SERVER_TRANSITIONS: dict[str, frozenset[str]] = {
    _MS.PROVISIONING: frozenset({_MS.ACTIVE, _MS.UNREACHABLE, _MS.RETIRED}),
    _MS.ACTIVE: frozenset({_MS.UNREACHABLE, _MS.RETIRED}),
    _MS.UNREACHABLE: frozenset({_MS.ACTIVE, _MS.RETIRED}),
    _MS.RETIRED: frozenset(),
}
MAIL_SERVER_STATES = StateMachine(MailServer, MAIL_SERVER_TRANSITIONS)


class SenderIpBinding(models.Model):
    """Which of the tenant's sending IPs one sender's mail leaves from: a whole sending domain
    (`@example.com`) or one mailbox (`anna@example.com`). Kept by services.ip_binding: domains
    are spread round-robin over the tenant's sending IPs and stay where they are; the emergency
    migration and a quarantine move them. Rendered into Postfix's sender-dependent transports
    (infrastructure/postfix.py) of the server that carries the IP."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="sender_ip_bindings"
    )
    sender = models.CharField(max_length=320)  # "@domain" or "user@domain", lower-case
    ip = models.ForeignKey(IpAddress, on_delete=models.PROTECT, related_name="sender_bindings")
    # Chosen by hand (bind_sender): the round-robin leaves it alone while its IP sends; a
    # migration or quarantine of that IP moves it like any other.
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "sender"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sender"], name="infra_binding_one_per_sender"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender} -> {self.ip}"


class PostfixOverrides(models.Model):
    """The last rendered Postfix override files of one server (infrastructure/postfix.py), with
    their fingerprint, so staff can see what the server should hold and copy it there while no
    channel can write files on a running server (docs/infrastructure.md)."""

    vps = models.OneToOneField(VpsInstance, on_delete=models.CASCADE, related_name="postfix")
    files = models.JSONField(default=dict)  # file name in /mailu/overrides/postfix -> content
    digest = models.CharField(max_length=32)
    rendered_at = models.DateTimeField()

    class Meta:
        verbose_name = "Postfix overrides"
        verbose_name_plural = "Postfix overrides"

    def __str__(self) -> str:
        return f"{self.vps} ({self.digest})"


class ResourceSource(models.TextChoices):
    PROVIDER = "provider", "Provider API"
    NODE_EXPORTER = "node_exporter", "node_exporter"


class VpsResourceSample(models.Model):
    """One reading of a server's CPU, memory and disk (services.resources, every few minutes),
    with the plan's thresholds it passed; a short history is kept (VPS_RESOURCE_RETENTION_HOURS).
    A failed reading is kept too (`error`), so the page says why figures are missing."""

    vps = models.ForeignKey(VpsInstance, on_delete=models.CASCADE, related_name="resource_samples")
    taken_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=ResourceSource.choices)
    error = models.CharField(max_length=500, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    disk_percent = models.FloatField(null=True, blank=True)
    memory_total_bytes = models.BigIntegerField(null=True, blank=True)
    disk_total_bytes = models.BigIntegerField(null=True, blank=True)
    disk_mountpoint = models.CharField(max_length=255, blank=True)
    cpu_count = models.PositiveSmallIntegerField(null=True, blank=True)
    # Cumulative counters since boot: the next reading's CPU percentage is taken against them.
    cpu_busy_seconds = models.FloatField(null=True, blank=True)
    cpu_total_seconds = models.FloatField(null=True, blank=True)
    # The figures over the plan's thresholds at the time ("cpu", "memory", "disk").
    over = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["vps_id", "-taken_at", "-id"]
        verbose_name = "VPS resource sample"
        indexes = [models.Index(fields=["vps", "-taken_at"], name="infra_sample_vps_taken")]

    def __str__(self) -> str:
        return f"{self.vps} at {self.taken_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return not self.error
