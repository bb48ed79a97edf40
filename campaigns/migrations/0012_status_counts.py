# Per-campaign status counters (issue 16; docs/analytics.md, "Status counters"): the table, the
# statement-level triggers that append deltas to it from every write to messages and
# enrollments, and the backfill from the rows already there.

import django.db.models.deletion
from django.db import migrations, models

# One function in each tenant schema (a tenant's dump holds it, so it restores anywhere; lean
# cloning copies it): it writes into the counters table of the schema of the table that fired it
# (TG_TABLE_SCHEMA), so it needs no search_path and still works once the schema is renamed.
# TG_ARGV[0] is the kind ('message' or 'enrollment'). Transition tables hold the rows a whole
# statement touched: one INSERT of a few grouped rows per statement, however many rows it wrote.
# An UPDATE counts only the rows whose status or campaign changed (old and new matched by id).
FUNCTION = r"""
CREATE FUNCTION campaigns_count_statuses() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    counts text := format('%I.campaigns_campaignstatuscount', TG_TABLE_SCHEMA);
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO %s (campaign_id, kind, status, n) '
            'SELECT campaign_id, $1, status, count(*) FROM new_rows '
            'GROUP BY campaign_id, status', counts) USING TG_ARGV[0];
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format(
            'INSERT INTO %s (campaign_id, kind, status, n) '
            'SELECT campaign_id, $1, status, -count(*) FROM old_rows '
            'GROUP BY campaign_id, status', counts) USING TG_ARGV[0];
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format(
            'INSERT INTO %s (campaign_id, kind, status, n) '
            'SELECT d.campaign_id, $1, d.status, sum(d.n) '
            'FROM old_rows o JOIN new_rows w ON w.id = o.id '
            'CROSS JOIN LATERAL (VALUES (o.campaign_id, o.status, -1), '
            '                           (w.campaign_id, w.status, 1)) AS d (campaign_id, status, n) '
            'WHERE o.status <> w.status OR o.campaign_id <> w.campaign_id '
            'GROUP BY d.campaign_id, d.status HAVING sum(d.n) <> 0', counts) USING TG_ARGV[0];
    ELSE  -- TRUNCATE: no rows of this kind are left anywhere
        EXECUTE format('DELETE FROM %s WHERE kind = $1', counts) USING TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$fn$
"""

TABLES = (("campaigns_message", "message"), ("campaigns_campaignlead", "enrollment"))


def _triggers(table, kind):
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION campaigns_count_statuses('{kind}')"
    return [
        f"CREATE TRIGGER {table}_count_ins AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER {table}_count_upd AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER {table}_count_del AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows {run}",
        f"CREATE TRIGGER {table}_count_trunc AFTER TRUNCATE ON {table} {run}",
    ]


def _drop(table):
    return [f"DROP TRIGGER IF EXISTS {table}_count_{op} ON {table}"
            for op in ("ins", "upd", "del", "trunc")]


# Unqualified names land in the tenant's schema: django-tenants migrates each schema with it first
# on the search path. Triggers first: CREATE TRIGGER locks out writers to the table until this
# migration commits, so the backfill's snapshot holds every row written before, and every later
# write fires them.
FORWARD = [
    FUNCTION,
    *(sql for table, kind in TABLES for sql in _triggers(table, kind)),
    *(
        f"INSERT INTO campaigns_campaignstatuscount (campaign_id, kind, status, n) "
        f"SELECT campaign_id, '{kind}', status, count(*) FROM {table} GROUP BY campaign_id, status"
        for table, kind in TABLES
    ),
]

BACKWARD = [
    *(sql for table, _ in TABLES for sql in _drop(table)),
    "DROP FUNCTION IF EXISTS campaigns_count_statuses()",
]


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0011_out_of_office_delay'),
    ]

    operations = [
        migrations.CreateModel(
            name='CampaignStatusCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('message', 'Messages'), ('enrollment', 'Enrollments')], max_length=16)),
                ('status', models.CharField(max_length=16)),
                ('n', models.BigIntegerField()),
                ('campaign', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='campaigns.campaign')),
            ],
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
