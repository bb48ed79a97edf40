"""`manage.py sandbox rule ADDRESS ACTION` / `sandbox rules` / `sandbox rule ADDRESS --clear`."""

from __future__ import annotations

import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails.sandbox.rules import RuleStore
from tests.ops.conftest import MANAGE, PYTHON, ROOT, subprocess_env


@pytest.fixture
def rules_file(tmp_path: Path, settings: SettingsWrapper) -> Path:
    settings.SANDBOX_RULES = tmp_path / "sandbox-rules.json"
    return Path(settings.SANDBOX_RULES)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("sandbox", *args, stdout=out)
    return out.getvalue()


def test_set_list_and_clear(rules_file: Path) -> None:
    assert "ghost@prospects.example: bounce" in _run("rule", "Ghost@Prospects.example", "bounce")
    _run("rule", "*@prospects.example", "reply", "--share", "0.2")
    _run("rule", "slow@prospects.example", "defer")
    listed = _run("rules").splitlines()
    assert listed == [
        "*@prospects.example\treply (share 0.2)",
        "ghost@prospects.example\tbounce",
        "slow@prospects.example\tdefer",
    ]
    stored = json.loads(rules_file.read_text())["rules"]
    assert {"address": "ghost@prospects.example", "action": "bounce", "share": 1.0} in stored
    _run("rule", "ghost@prospects.example", "--clear")
    assert RuleStore(rules_file).at_rcpt("ghost@prospects.example") == "accept"
    assert RuleStore(rules_file).at_rcpt("slow+x@prospects.example") == "defer"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("rule", "ghost@prospects.example", "explode"), "Unknown action"),
        (("rule", "not-an-address", "bounce"), "Not an address"),
        (("rule", "ghost@prospects.example"), "Give an action"),
        (("rule", "ghost@prospects.example", "reject", "--share", "0.5"), "--share applies"),
        (("rule", "ghost@prospects.example", "reply", "--share", "1.5"), "fraction"),
        (("rule", "nobody@prospects.example", "--clear"), "No rule"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    rules_file: Path, args: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(CommandError, match=reason):
        _run(*args)
    assert not rules_file.exists() or json.loads(rules_file.read_text())["rules"] == []


def test_exit_codes(tmp_path: Path) -> None:
    env = subprocess_env(SANDBOX_RULES=str(tmp_path / "rules.json"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, MANAGE, "sandbox", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = run("rule", "ghost@prospects.example", "complain")
    assert ok.returncode == 0, ok.stderr
    bad = run("rule", "ghost@prospects.example", "explode")
    assert bad.returncode != 0
    assert "Unknown action 'explode'" in bad.stderr
    listed = run("rules")
    assert listed.stdout.strip() == "ghost@prospects.example\tcomplain"
