"""Bad arguments to the management commands added on 2026-12-05: each refusal is a CommandError
(a one-line non-zero exit saying why), never a traceback."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import Cast
from tests.review.probe import HUGE_ID


def _refused(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    return str(refused.value)


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_backup_list_refuses_a_limit_below_one(cast: Cast, limit: str) -> None:
    assert "--limit" in _refused("backup", "list", "--limit", limit)


def test_commands_refuse_unknown_and_huge_ids(cast: Cast) -> None:
    assert _refused("alerts", "ack", str(HUGE_ID))
    assert _refused("backup", "verify", "--backup", str(HUGE_ID))
    assert _refused("webhooks", "deliveries", str(HUGE_ID), "--tenant", "acme")
    assert _refused("webhooks", "replay", str(HUGE_ID), "--tenant", "acme")
    assert _refused("webhooks", "list", "--tenant", "nobody")
    assert _refused("audit", "list", "nobody")
    assert _refused("audit", "list", "acme", "--limit", "0")
    assert _refused("reputation", "score", "--tenant", "nobody")
    assert _refused("infra", "resources", "nobody")
