"""The record of every backup: what was dumped, where the encrypted file is, how big it is, its
checksum and the row counts of the snapshot it holds (what `backup verify` compares against)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from penguinmails.states import StateMachine


class BackupKind(models.TextChoices):
    FULL = "full", "Whole database"
    TENANT = "tenant", "One tenant's schema"


class BackupStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    PRUNED = "pruned", "Pruned"  # its file was deleted by retention; the record stays


class VerifyStatus(models.TextChoices):
    NEVER = "never", "Not verified"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class Backup(models.Model):
    """One pg_dump (custom format), encrypted, in the backup storage (a directory or S3).

    `manifest` holds the rows of every table in the dump's snapshot ({schema: {table: rows}}),
    counted in the very snapshot pg_dump read (exported snapshot), so a restore must match it.
    """

    kind = models.CharField(max_length=10, choices=BackupKind.choices)
    # The tenant's schema and slug for a tenant backup (kept as text: the record outlives the
    # tenant, and the core does not reference the tenants app).
    tenant_schema = models.CharField(max_length=63, blank=True, db_index=True)
    tenant_slug = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=100, blank=True)  # manual, daily, pre-migrate
    status = models.CharField(
        max_length=12, choices=BackupStatus.choices, default=BackupStatus.RUNNING, db_index=True
    )
    storage = models.CharField(max_length=10)  # dir or s3
    path = models.CharField(max_length=500, blank=True)  # file path or object key
    size = models.BigIntegerField(default=0)  # bytes stored (encrypted)
    sha256 = models.CharField(max_length=64, blank=True)  # of the stored (encrypted) bytes
    key_id = models.CharField(max_length=16, blank=True)  # which key encrypted it
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verify_status = models.CharField(
        max_length=10, choices=VerifyStatus.choices, default=VerifyStatus.NEVER
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_detail = models.TextField(blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        what = f"tenant {self.tenant_slug}" if self.kind == BackupKind.TENANT else "database"
        return f"backup #{self.pk} of {what} ({self.status})"

    @property
    def rows(self) -> int:
        return sum(sum(tables.values()) for tables in (self.manifest or {}).values())


_S = BackupStatus
BACKUP_MACHINE = StateMachine(
    Backup,
    {
        _S.RUNNING: {_S.COMPLETED, _S.FAILED},
        _S.COMPLETED: {_S.PRUNED},
        _S.FAILED: {_S.PRUNED},
        _S.PRUNED: set(),
    },
)
