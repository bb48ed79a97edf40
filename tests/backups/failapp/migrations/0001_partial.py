"""Succeeds: deletes the test's marker rows and creates a table (the partial effects that the
restore must take away again)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.RunSQL(
            "DELETE FROM public.o3_marker; CREATE TABLE public.failapp_partial (id int);",
            migrations.RunSQL.noop,
        ),
    ]
