"""Seed the plan ladder (billing.ladder). Re-running updates the seeded plans by slug; other
plans are untouched."""

from __future__ import annotations

from typing import Any

from django.db import migrations

from billing.ladder import seed_ladder


def seed(apps: Any, schema_editor: Any) -> None:
    # Plans live in the public schema only.
    if schema_editor.connection.schema_name != "public":
        return
    seed_ladder(apps.get_model("billing", "Plan"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
