"""The real sandbox Dovecot for tests (penguinmails/sandbox/imap.py, docs/sandbox.md).

`running_dovecot()` starts a private instance on a free loopback port in a fresh directory and
stops it afterwards; the tests are skipped, saying why, only when Dovecot is not installed.
The directory is made under the system's temporary directory (not pytest's tmp_path, whose
parents are private to root): Dovecot's mail processes run as `dovecot` and must reach it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from penguinmails.sandbox.imap import DovecotMissing, SandboxImap, dovecot_binary

_LOGIN = re.compile(r"imap-login: Info: Login: user=<([^>]*)>")
_FAILED = re.compile(r"imap-login: Info: Disconnected: .*auth failed.*?: user=<([^>]*)>")


@contextmanager
def running_dovecot(users: dict[str, str] | None = None) -> Iterator[SandboxImap]:
    try:
        dovecot_binary()
    except DovecotMissing as exc:
        pytest.skip(str(exc))
    base = Path(tempfile.mkdtemp(prefix="pm-imap-"))
    base.chmod(0o755)
    server = SandboxImap(base)
    try:
        if users:
            server.add_users(users)
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class LoginLog:
    """The logins Dovecot logged since this object was made: (user, succeeded) in order."""

    def __init__(self, server: SandboxImap) -> None:
        self.server = server
        self.offset = self._size()

    def _size(self) -> int:
        try:
            return self.server.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def logins(self) -> list[tuple[str, bool]]:
        time.sleep(0.1)  # Dovecot's log process writes asynchronously
        with self.server.log_path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        found: list[tuple[str, bool]] = []
        for line in text.splitlines():
            if ok := _LOGIN.search(line):
                found.append((ok.group(1), True))
            elif failed := _FAILED.search(line):
                found.append((failed.group(1), False))
        return found
