"""`manage.py inbound parse` in a subprocess: JSON lines and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def inbound(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "inbound", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_it_prints_one_json_line_per_file(corpus: Path) -> None:
    result = inbound("parse", str(corpus / "not"), str(corpus / "bsd" / "rfc3464-01.eml"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(list((corpus / "not").iterdir())) + 1
    assert set(lines[0]) == {"file", "kind", "recipients", "original_message_id", "feedback_type"}
    last = lines[-1]
    assert last["kind"] == "bounce"
    assert last["recipients"][0] == {
        "address": "userunknown@bouncehammer.jp",
        "status": "5.1.1",
        "class": "hard",
        "reason": "user_unknown",
        "remote_reply": last["recipients"][0]["remote_reply"],
    }


@pytest.mark.slow
def test_it_exits_non_zero_naming_a_missing_path(tmp_path: Path) -> None:
    result = inbound("parse", str(tmp_path / "absent.eml"))
    assert result.returncode != 0
    assert "absent.eml" in result.stderr
    assert result.stdout == ""
