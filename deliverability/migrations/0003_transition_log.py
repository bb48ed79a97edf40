"""Domain and mailbox transitions move into the one transition log (docs/states.md); their
tables go."""

from django.db import migrations

COPY = """INSERT INTO state_transitions
    (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
SELECT 'deliverability.sendingdomain', domain_id, from_status, to_status, reason, CASE WHEN job_id IS NULL THEN 'system' ELSE 'job:' || job_id END, NULL, at
FROM deliverability_domaintransition ORDER BY at, id;
INSERT INTO state_transitions
    (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
SELECT 'deliverability.mailbox', mailbox_id, from_status, to_status, reason, COALESCE(NULLIF(actor_email, ''), 'system'), NULL, at
FROM deliverability_mailboxtransition ORDER BY at, id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("deliverability", "0002_mailboxes"),
        ("history", "0001_transition_log"),
    ]

    operations = [
        migrations.RunSQL(COPY, reverse_sql=migrations.RunSQL.noop),
        migrations.DeleteModel(name="DomainTransition"),
        migrations.DeleteModel(name="MailboxTransition"),
    ]
