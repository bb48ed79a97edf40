"""The blocklists checked out of the box (issue 13 item 6; docs/reputation.md "The lists").
Public schema only: the tenant schemas' copy of the table stays empty."""

from __future__ import annotations

from typing import Any

from django.db import migrations

LISTS = [
    # name, zone, kind, weight, removal URL
    ("Spamhaus ZEN", "zen.spamhaus.org", "ip", 100, "https://check.spamhaus.org/"),
    ("Barracuda BRBL", "b.barracudacentral.org", "ip", 70,
     "https://www.barracudacentral.org/rbl/removal-request"),
    ("SpamCop", "bl.spamcop.net", "ip", 60, "https://www.spamcop.net/bl.shtml"),
    ("UCEPROTECT level 1", "dnsbl-1.uceprotect.net", "ip", 30,
     "https://www.uceprotect.net/en/rblcheck.php"),
    ("PSBL", "psbl.surriel.com", "ip", 30, "https://psbl.org/remove"),
    ("Mailspike", "bl.mailspike.net", "ip", 40, "https://mailspike.org/iplookup.html"),
    ("Spamhaus DBL", "dbl.spamhaus.org", "domain", 100, "https://check.spamhaus.org/"),
    ("SURBL", "multi.surbl.org", "domain", 70, "https://surbl.org/surbl-analysis"),
    ("URIBL", "multi.uribl.com", "domain", 60, "https://admin.uribl.com/"),
]  # fmt: skip


def seed(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.schema_name != "public":
        return
    Blocklist = apps.get_model("reputation", "Blocklist")
    for name, zone, kind, weight, url in LISTS:
        Blocklist.objects.get_or_create(
            zone=zone, defaults={"name": name, "kind": kind, "weight": weight, "removal_url": url}
        )


def unseed(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.schema_name != "public":
        return
    apps.get_model("reputation", "Blocklist").objects.filter(
        zone__in=[zone for _, zone, *_ in LISTS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("reputation", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
