from django.db import migrations

from tenants.permissions import BUILTIN_PERMISSIONS, BuiltinRole

DESCRIPTIONS = {
    "owner": "Everything, including billing and transferring ownership.",
    "admin": "Everything except changing owners.",
    "member": "Runs campaigns, leads, templates, mailboxes and domains; no billing or API keys.",
    "viewer": "Reads everything except billing; changes nothing.",
}


def create_builtin_roles(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    Role = apps.get_model("tenants", "Role")
    for role in BuiltinRole:
        Role.objects.update_or_create(
            tenant=None,
            slug=role.value,
            defaults={
                "name": role.label,
                "permissions": dict(BUILTIN_PERMISSIONS[role]),
                "is_builtin": True,
                "description": DESCRIPTIONS[role.value],
            },
        )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(create_builtin_roles, migrations.RunPython.noop)]
