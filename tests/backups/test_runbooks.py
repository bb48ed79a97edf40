"""The runbooks name only commands that exist: every `manage.py COMMAND [SUBCOMMAND]` in
docs/runbooks/ and the operations page is a real command whose parser accepts the subcommand."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "runbooks").glob("*.md")) + [ROOT / "docs" / "operations.md"]
USE = re.compile(r"manage\.py ([a-z_]+)(?: ([a-z][a-z-]*))?(?: ([a-z][a-z-]*))?")


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _uses() -> list[tuple[str, str, list[str]]]:
    found = []
    for page in PAGES:
        for match in USE.finditer(page.read_text()):
            found.append((page.name, match.group(1), [w for w in match.groups()[1:] if w]))
    return found


def test_the_runbooks_exist_and_name_commands() -> None:
    names = {p.name for p in PAGES}
    for page in ("database-restore.md", "ip-reputation-crisis.md", "vps-down.md",
                 "mail-server-down.md", "queue-backlog.md", "billing-incident.md",
                 "dns-and-certificates.md", "schema-migration.md", "system-outage.md"):  # fmt: skip
        assert page in names
    assert len(_uses()) > 80


def test_every_command_and_subcommand_named_exists() -> None:
    commands = get_commands()
    wrong = []
    for page, name, words in _uses():
        if name not in commands:
            wrong.append(f"{page}: manage.py {name} (no such command)")
            continue
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        for word in words:
            choices = _choices(parser)
            if not choices:
                break  # the command takes arguments, not subcommands, from here on
            if word not in choices:
                wrong.append(f"{page}: manage.py {name} … {word} (choices: {sorted(choices)})")
                break
            parser = choices[word]
    assert not wrong, "\n".join(wrong)
