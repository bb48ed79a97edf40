"""The demo workspace's sandbox answers: `make run`'s seeding writes the prospects' rules and
makes the demo mailboxes Dovecot users (a user already there keeps its password)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campaigns.demo import DEMO_ANSWERS, seed_sandbox_answers
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.rules import RuleStore


def test_the_demo_answers_and_mailboxes_are_seeded(tmp_path: Path, settings: Any) -> None:
    settings.SANDBOX_RULES = tmp_path / "rules.json"
    settings.SANDBOX_IMAP_DIR = tmp_path / "dovecot"
    imap = SandboxImap(tmp_path / "dovecot")
    imap.add_user("alex@demo-agency.test", "kept-password")
    said: list[str] = []
    seed_sandbox_answers(["alex@demo-agency.test", "sam@demo-agency.test"], say=said.append)
    rules = RuleStore(tmp_path / "rules.json")
    for address, action in DEMO_ANSWERS:
        assert rules.after_data(address, "<m1@demo-agency.test>") == action
    assert rules.after_data("nobody-else@prospects.example", "<m1@x>") == "accept"
    assert sorted(a for _, a in DEMO_ANSWERS).count("bounce") == 2
    users = imap.users()
    assert users["alex@demo-agency.test"] == "kept-password"
    assert len(users["sam@demo-agency.test"]) >= 20
    assert said and "complain" in said[0]
    seed_sandbox_answers(["sam@demo-agency.test"], say=said.append)  # again: unchanged
    assert imap.users() == users
