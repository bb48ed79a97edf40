"""`manage.py check --deploy` with production values, in a clean process environment."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
from cryptography.fernet import Fernet

from tests.ops.conftest import MANAGE, PYTHON, ROOT


def production_env(**overrides: str | None) -> dict[str, str]:
    # Built from nothing but PATH/HOME, so no development variable (DEBUG=true) leaks in.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "penguinmails.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60)[:60],
        "ALLOWED_HOSTS": "penguinmails.com,.penguinmails.com",
        "BASE_DOMAIN": "penguinmails.com",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, MANAGE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_it_passes_the_deploy_check_with_production_values() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_it_flags_debug_and_a_weak_secret_key_in_the_deploy_check() -> None:
    # The same check, made to fail: proves the passing test above is not vacuous.
    env = production_env(DEBUG="true", SECRET_KEY="short")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG on
    assert "security.W009" in result.stderr  # weak SECRET_KEY


@pytest.mark.slow
@pytest.mark.parametrize(
    "variable", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS"]
)
def test_it_fails_naming_a_missing_required_variable(variable: str) -> None:
    result = manage("check", env=production_env(**{variable: None}))
    assert result.returncode != 0
    assert f"Environment variable {variable} is required but not set." in result.stderr


@pytest.mark.slow
def test_it_fails_naming_a_malformed_variable() -> None:
    result = manage("check", env=production_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "Environment variable DEBUG must be a boolean" in result.stderr
