"""Benchmark: backup create, verify, one tenant's restore and a whole-database restore of a
database with BENCH_LEADS leads, and the peak memory of the command (streaming: flat).

    .venv/bin/python -m penguinmails.devenv exec -- .venv/bin/python bench/backups.py

Runs in its own database (`pm_bench_backups`, dropped and recreated on the DATABASE_URL server)
and its own BACKUP_DIR (a temporary folder), never in dev data. Options: --leads 2000000
--keep (leave the database behind).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
from bench._harness import bench_database, setup_django  # noqa: E402

BENCH_DB = "pm_bench_backups"


def manage(*args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS of the manage.py process in MiB, its last stdout line)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({proc.returncode}): {out}")
    lines = out.strip().splitlines()
    return time.perf_counter() - started, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def fill(schema: str, leads: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # md5 text: about as compressible as real names and companies, unlike repeated strings.
        cursor.execute(
            f"""
            INSERT INTO "{schema}".campaigns_lead (email, first_name, last_name, company, title,
                website, phone, timezone, custom_fields, tags, status, is_role_address,
                is_disposable, mx_ok, created_at, updated_at)
            SELECT 'lead' || g || '@example' || (g %% 997) || '.com', left(md5(g::text), 8),
                left(md5((g * 7)::text), 10), 'Company ' || left(md5((g %% 50000)::text), 12),
                'Head of ' || (g %% 40), 'https://example' || (g %% 997) || '.com', '', '',
                jsonb_build_object('score', g %% 100), '{{}}', 'active', false, false, NULL,
                now(), now()
            FROM generate_series(1, %s) AS g
            """,  # noqa: S608 - our schema
            [leads],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")
    with tempfile.TemporaryDirectory(prefix="pm-bench-backups-") as folder:
        os.environ["BACKUP_DIR"] = folder
        os.environ["BACKUP_STORAGE"] = "dir"
        with bench_database(BENCH_DB, keep=args.keep):
            setup_django()
            run(args)
    return 0


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from tenants.models import User
    from tenants.services.tenancy import create_tenant, ensure_template_tenant

    ensure_template_tenant()
    owner = User.objects.create_user("owner@bench.example.com", "x" * 20)
    tenant = create_tenant(name="Bench", slug="bench", owner=owner)
    create_tenant(name="Other", slug="other", owner=owner)
    started = time.perf_counter()
    fill(tenant.schema_name, args.leads)
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{tenant.schema_name}".campaigns_lead')  # noqa: S608
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0] / 1_048_576
    connection.close()
    print(
        f"database: {size:,.0f} MiB, {args.leads:,} leads "
        f"(filled in {time.perf_counter() - started:.0f} s)"
    )
    for label, command in (
        ("backup create (whole database)", ("backup", "create")),
        ("backup create --tenant bench", ("backup", "create", "--tenant", "bench")),
        ("backup verify (whole database)", ("backup", "verify")),
        ("backup restore --tenant bench", ("backup", "restore", "--tenant", "bench")),
        ("backup restore --yes (whole database)", ("backup", "restore", "--yes")),
    ):
        seconds, rss, last = manage(*command)
        print(f"{label:<40} {seconds:7.1f} s   peak RSS {rss:6.0f} MiB   {last}")
    stored = sum(p.stat().st_size for p in Path(os.environ["BACKUP_DIR"]).rglob("*.enc"))
    print(f"stored (encrypted, both backups): {stored / 1_048_576:,.1f} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
