"""The platform's settings plus `tests.backups.failapp`, whose second migration fails on purpose
(tests/backups/test_migrate_safely.py runs `migrate_safely` with these in a subprocess)."""

from __future__ import annotations

from penguinmails import settings as _base

globals().update({name: getattr(_base, name) for name in dir(_base) if name.isupper()})

SHARED_APPS = [*_base.SHARED_APPS, "tests.backups.failapp"]
INSTALLED_APPS = [*_base.INSTALLED_APPS, "tests.backups.failapp"]
