"""Fails on purpose, after 0001 has been applied and recorded."""

from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("deliberate failure in failapp 0002")


class Migration(migrations.Migration):
    dependencies = [("failapp", "0001_partial")]

    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
