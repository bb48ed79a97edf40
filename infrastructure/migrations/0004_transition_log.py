"""VPS and IP transitions move into the one transition log (docs/states.md); their tables go."""

from django.db import migrations

COPY = """INSERT INTO state_transitions
    (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
SELECT 'infrastructure.vpsinstance', vps_id, from_status, to_status, reason, CASE WHEN job_id IS NULL THEN 'system' ELSE 'job:' || job_id END, NULL, at
FROM infrastructure_vpstransition ORDER BY at, id;
INSERT INTO state_transitions
    (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
SELECT 'infrastructure.ipaddress', ip_id, from_status, to_status, reason, 'system', NULL, at
FROM infrastructure_iptransition ORDER BY at, id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("infrastructure", "0003_mailserver_shared"),
        ("history", "0001_transition_log"),
    ]

    operations = [
        migrations.RunSQL(COPY, reverse_sql=migrations.RunSQL.noop),
        migrations.DeleteModel(name="VpsTransition"),
        migrations.DeleteModel(name="IpTransition"),
    ]
