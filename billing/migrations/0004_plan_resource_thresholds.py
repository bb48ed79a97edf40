"""Per-plan resource thresholds of the plan's servers (infrastructure.services.resources)."""

from __future__ import annotations

import django.core.validators
from django.db import migrations, models


def _percent(default: int) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        default=default,
        validators=[
            django.core.validators.MinValueValidator(1),
            django.core.validators.MaxValueValidator(100),
        ],
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_stripe")]

    operations = [
        migrations.AddField("plan", "cpu_alert_percent", _percent(90)),
        migrations.AddField("plan", "memory_alert_percent", _percent(90)),
        migrations.AddField("plan", "disk_alert_percent", _percent(85)),
    ]
