"""Campaign content switches: `track_opens` and `plain_text_only` (docs/sending.md, "Content").

Existing campaigns keep the open pixel they were sending (the field is added with True, which
fills their rows): switching it off under a running sequence would make its open figures stop
mid-way without anyone having chosen it. New campaigns default to False (the model's default,
set by the second operation, which changes no row). Nobody had plain-text-only before: False."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_lead_list_member"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="track_opens",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="track_opens",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="campaign",
            name="plain_text_only",
            field=models.BooleanField(default=False),
        ),
    ]
