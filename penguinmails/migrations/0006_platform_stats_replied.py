from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("penguinmails", "0005_warmup_pool_platform_stats"),
    ]

    operations = [
        migrations.AddField(
            model_name="platformdailystat",
            name="replied",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
