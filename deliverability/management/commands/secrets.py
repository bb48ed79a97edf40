"""`manage.py secrets rotate [--batch-size N]`: re-encrypt every stored secret with the newest key.

Rotating keys: put the new key first in FIELD_ENCRYPTION_KEYS, keep the old one after it, run
this, then drop the old key. Every EncryptedTextField is covered: mailbox passwords and sending
domain DKIM keys in every tenant schema, and public MailServer API tokens. A value no listed key
opens is reported (its mailbox marked unusable) and the command exits non-zero.
"""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django_tenants.utils import get_public_schema_name, schema_context

from deliverability.models import Mailbox
from deliverability.services.mailboxes import mark_unusable
from penguinmails.crypto import EncryptedTextField, Secret, SecretUnavailable, is_current, rotate
from tenants.models import Tenant


@dataclass
class Counts:
    rotated: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)


def _encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


class Command(BaseCommand):
    help = "Secrets at rest: `secrets rotate` re-encrypts every stored secret with the newest key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        rot = sub.add_parser("rotate", help="Re-encrypt every secret with the newest key.")
        rot.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        batch = max(1, options["batch_size"])
        counts = Counts()
        public: list[type[models.Model]] = []
        tenant_models: list[type[models.Model]] = []
        for model in apps.get_models():
            if not _encrypted_fields(model):
                continue
            # django-tenants: TENANT_APPS' tables live in each tenant schema, the rest in public.
            app = model._meta.app_config.name  # type: ignore[union-attr]
            (tenant_models if app in settings.TENANT_APPS else public).append(model)
        with schema_context(get_public_schema_name()):
            for model in public:
                self._rotate_model(model, "public", batch, counts)
        for tenant in Tenant.objects.order_by("pk"):
            with schema_context(tenant.schema_name):
                for model in tenant_models:
                    self._rotate_model(model, tenant.schema_name, batch, counts)
        self.stdout.write(
            f"Done: {counts.rotated} rotated, {counts.current} already current, "
            f"{len(counts.failed)} unreadable."
        )
        if counts.failed:
            for line in counts.failed:
                self.stderr.write(line)
            raise CommandError(
                f"{len(counts.failed)} secret(s) could not be decrypted with any key in "
                "FIELD_ENCRYPTION_KEYS; their mailboxes are marked unusable."
            )

    def _rotate_model(
        self, model: type[models.Model], schema: str, batch: int, counts: Counts
    ) -> None:
        if model._meta.db_table not in connection.introspection.table_names():
            return  # a model without a table here (a test-only model, an app not migrated)
        names = _encrypted_fields(model)
        label = f"{schema}.{model._meta.label}"
        last_pk: Any = None
        done = 0
        while True:
            rows = model._default_manager.order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            chunk = list(rows.values_list("pk", *names)[:batch])
            if not chunk:
                break
            with transaction.atomic():
                for pk, *secrets in chunk:
                    changes = {}
                    for name, secret in zip(names, secrets, strict=True):
                        token = secret.token if isinstance(secret, Secret) else None
                        if token is None:
                            continue
                        if is_current(token):
                            counts.current += 1
                            continue
                        try:
                            changes[name] = Secret(token=rotate(token))
                        except SecretUnavailable:
                            counts.failed.append(f"{label} id={pk} {name}: no key decrypts it")
                            if model is Mailbox:
                                mark_unusable(
                                    pk,
                                    reason=f"Its {name.replace('_', ' ')} cannot be decrypted "
                                    "with any key in FIELD_ENCRYPTION_KEYS (secrets rotate).",
                                )
                    if changes:
                        model._default_manager.filter(pk=pk).update(**changes)
                        counts.rotated += len(changes)
            done += len(chunk)
            last_pk = chunk[-1][0]
            self.stdout.write(f"{label}: {done} rows checked")
