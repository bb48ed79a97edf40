"""What the sandbox SMTP server does with a recipient: a small rule table in a JSON file.

A rule names an address (`bob@prospects.example`) or a whole domain (`*@prospects.example`) and
an action. At RCPT, `defer` answers 451 and `reject` 550; every other recipient is accepted, and
after DATA `bounce`, `complain`, `reply` and `ooo` make the server send back a DSN, an ARF report,
a human reply or an out-of-office (penguinmails.sandbox.reports). An address with no rule is
accepted and nothing more happens. A rule may apply to a share of messages only (`--share 0.2`),
decided by hashing the Message-ID, so the same message always gets the same answer.

The file (`SANDBOX_RULES`, beside the DNS zone file) is written by `manage.py sandbox rule` and
reread by the server when its mtime or size changes, so rules apply without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

from penguinmails.sandbox.filelock import locked

ACCEPT = "accept"
AT_RCPT = ("defer", "reject")
AFTER_DATA = ("bounce", "complain", "reply", "ooo")
ACTIONS = (ACCEPT, *AT_RCPT, *AFTER_DATA)
DEFAULT_PATH = Path(".local") / "sandbox-rules.json"
_ADDRESS = re.compile(
    r"^(\*|[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64})@([a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+)$"
)


class RuleError(ValueError):
    """A rule that cannot be stored: unknown action, malformed address, share out of range."""


@dataclass(frozen=True)
class Rule:
    address: str
    action: str
    share: float = 1.0

    def hits(self, message_id: str) -> bool:
        """Whether this message falls in the rule's share (always, for a full rule)."""
        if self.share >= 1.0:
            return True
        digest = hashlib.sha256(f"{message_id.strip()}|{self.address}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.share


def normalise(address: str) -> str:
    return address.strip().strip("<>").lower()


def base_address(address: str) -> str:
    """The address without its `+tag` (Mailu/Dovecot's RECIPIENT_DELIMITER=+)."""
    local, at, domain = normalise(address).rpartition("@")
    if not at:
        return normalise(address)
    return f"{local.split('+', 1)[0] or local}@{domain}"


def make_rule(address: str, action: str, share: float = 1.0) -> Rule:
    """A checked rule, or RuleError saying what is wrong."""
    address = normalise(address)
    if action not in ACTIONS:
        raise RuleError(f"Unknown action {action!r}: one of {', '.join(ACTIONS)}.")
    if not _ADDRESS.match(address):
        raise RuleError(f"Not an address or *@domain: {address!r}.")
    if not 0.0 < share <= 1.0:
        raise RuleError(f"A share is a fraction in (0, 1], not {share}.")
    if share < 1.0 and action not in AFTER_DATA:
        raise RuleError(
            f"--share applies to {', '.join(AFTER_DATA)} (answered after DATA, when the "
            f"Message-ID is known), not to {action}."
        )
    return Rule(address, action, share)


def _candidates(address: str) -> list[str]:
    """Rule keys for a recipient, most specific first: as given, without +tag, the domain."""
    full = normalise(address)
    domain = full.rpartition("@")[2]
    return list(dict.fromkeys([full, base_address(full), f"*@{domain}"]))


class RuleStore:
    """The rule table, in memory (`path=None`) or in a JSON file shared between processes."""

    def __init__(self, path: Path | str | None = DEFAULT_PATH) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._stamp: tuple[int, int] | None = None

    # --- reading ---------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        with self._lock:
            self._reload()
            return sorted(self._rules.values(), key=lambda r: r.address)

    def at_rcpt(self, address: str) -> str:
        """What RCPT answers: the most specific rule's action when it is defer or reject."""
        table = {r.address: r for r in self.rules()}
        for key in _candidates(address):
            if key in table:
                action = table[key].action
                return action if action in AT_RCPT else ACCEPT
        return ACCEPT

    def after_data(self, address: str, message_id: str) -> str:
        """What happens once the message is accepted: the most specific rule that hits."""
        table = {r.address: r for r in self.rules()}
        for key in _candidates(address):
            rule = table.get(key)
            if rule is not None and rule.action not in AT_RCPT and rule.hits(message_id):
                return rule.action
        return ACCEPT

    # --- writing ---------------------------------------------------------------------------
    def set(self, rule: Rule) -> None:
        self._update(lambda rules: {**rules, rule.address: rule})

    def clear(self, address: str) -> bool:
        """Remove the rule for `address`; False when there was none."""
        key = normalise(address)
        found = False

        def drop(rules: dict[str, Rule]) -> dict[str, Rule]:
            nonlocal found
            found = key in rules
            return {k: r for k, r in rules.items() if k != key}

        self._update(drop)
        return found

    def _update(self, change: Callable[[dict[str, Rule]], dict[str, Rule]]) -> None:
        with self._lock, self._file_lock():
            self._reload()
            self._rules = change(dict(self._rules))
            self._save()

    # --- file backing ----------------------------------------------------------------------
    def _file_lock(self) -> AbstractContextManager[None]:
        return locked(self.path)

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._rules, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text() or "{}")
        rules = [Rule(**item) for item in data.get("rules", [])]
        self._rules = {r.address: r for r in rules}
        self._stamp = stamp

    def _save(self) -> None:
        if self.path is None:
            return
        rules = sorted(self._rules.values(), key=lambda r: r.address)
        payload = json.dumps({"rules": [asdict(r) for r in rules]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)
