from django.db import migrations

from tenants.builtin import ensure_builtin_roles


def create_builtin_roles(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    ensure_builtin_roles(apps.get_model("tenants", "Role"))


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(create_builtin_roles, migrations.RunPython.noop)]
