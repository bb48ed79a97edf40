"""Campaign transitions move into the one transition log (docs/states.md); their table goes."""

from django.db import migrations

COPY = """INSERT INTO state_transitions
    (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
SELECT 'campaigns.campaign', campaign_id, from_status, to_status, reason, COALESCE(NULLIF(actor_email, ''), 'system'), NULL, created_at
FROM campaigns_campaigntransition ORDER BY created_at, id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0007_campaign_send_options"),
        ("history", "0001_transition_log"),
    ]

    operations = [
        migrations.RunSQL(COPY, reverse_sql=migrations.RunSQL.noop),
        migrations.DeleteModel(name="CampaignTransition"),
    ]
