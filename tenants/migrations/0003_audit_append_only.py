"""Audit log: who (a snapshot of the actor's address), where from (app, admin, support), an index
for one tenant's log, and a trigger that makes the table append-only in PostgreSQL itself."""

from django.db import migrations, models

BACKFILL_ACTOR_EMAIL = """
UPDATE tenants_auditevent e SET actor_email = u.email
FROM tenants_user u WHERE e.actor_id = u.id AND e.actor_email = '';
"""

# Refuses UPDATE and DELETE of audit rows, whatever the client (ORM, raw SQL, psql). The one
# update let through is ON DELETE SET NULL of a deleted user (actor_id cleared, nothing else
# changed): actor_email keeps who it was. TRUNCATE (the test suite's flush) is not a row event.
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION tenants_auditevent_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
     AND NEW.id = OLD.id
     AND NEW.tenant_id IS NOT DISTINCT FROM OLD.tenant_id
     AND NEW.actor_email = OLD.actor_email
     AND NEW.source = OLD.source
     AND NEW.action = OLD.action
     AND NEW.detail = OLD.detail
     AND NEW.created_at = OLD.created_at THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tenants_auditevent_append_only ON tenants_auditevent;
CREATE TRIGGER tenants_auditevent_append_only
  BEFORE UPDATE OR DELETE ON tenants_auditevent
  FOR EACH ROW EXECUTE FUNCTION tenants_auditevent_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS tenants_auditevent_append_only ON tenants_auditevent;
DROP FUNCTION IF EXISTS tenants_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_builtin_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditevent",
            options={"ordering": ["-created_at", "-id"]},
        ),
        migrations.AddField(
            model_name="auditevent",
            name="actor_email",
            field=models.CharField(blank=True, default="", max_length=254),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="source",
            field=models.CharField(
                choices=[
                    ("app", "Workspace"),
                    ("admin", "Platform staff (admin)"),
                    ("support", "Platform staff (support access)"),
                ],
                db_index=True,
                default="app",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent"),
        ),
        migrations.RunSQL(BACKFILL_ACTOR_EMAIL, migrations.RunSQL.noop),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
