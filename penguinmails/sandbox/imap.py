"""The sandbox IMAP server: a private Dovecot instance standing in for Mailu's mailboxes.

Everything lives under one directory (default `.local/dovecot/`): the generated `dovecot.conf`,
the `passwd` file (one `{PLAIN}` password per mailbox user), the Maildir tree (`mail/`), the
runtime directory (`run/`, with `master.pid`), the state directory and the log. It is started as
`dovecot -F -c CONFIG` (root starts it; the login processes run as `dovenull` and the mail
processes as `dovecot`, who owns the Maildir tree), listens on loopback without TLS, and answers
real IMAP: INBOX, Junk (SPECIAL-USE `\\Junk`), Sent and Trash. Users are added and removed by
rewriting the passwd file, which Dovecot rereads; mail is delivered by IMAP APPEND as the user.

Debian's `dovecot-imapd` provides the binary. The package's own system service is not needed.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

PACKAGE = "dovecot-imapd"
DEFAULT_DIR = Path(".local") / "dovecot"
FOLDERS = ("INBOX", "Junk", "Sent", "Trash")
MAIL_OWNER = "dovecot"
# Unix socket paths are limited to 108 bytes; Dovecot's longest socket name under base_dir is
# about 30, so a longer runtime directory moves to a short one under /tmp.
_MAX_RUN_DIR = 70
_FORBIDDEN = re.compile(r"[:\s\x00-\x1f\x7f]")


class DovecotError(RuntimeError):
    """The sandbox Dovecot cannot be set up, started or stopped."""


class DovecotMissing(DovecotError):
    """Dovecot is not installed on this machine."""


def dovecot_binary() -> str:
    """The `dovecot` executable, or DovecotMissing naming the Debian package to install."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise DovecotMissing(
            f"Dovecot is not installed: the sandbox IMAP server needs Debian's `{PACKAGE}` "
            f"(`apt-get install {PACKAGE}`; `.ci/run` installs it)."
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_credential(kind: str, value: str) -> None:
    if not value or _FORBIDDEN.search(value):
        raise ValueError(f"A sandbox IMAP {kind} may not be empty or contain ':' or whitespace.")


def _pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        proc_stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return proc_stat.rpartition(")")[2].split()[0] != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class SandboxImap:
    """One private Dovecot instance; `start()` it, use it, `stop()` it (or use it as a context
    manager). `port=0` picks a free port at start."""

    base_dir: Path = DEFAULT_DIR
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).absolute()

    # --- paths -----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.base_dir / "dovecot.conf"

    @property
    def passwd_path(self) -> Path:
        return self.base_dir / "passwd"

    @property
    def mail_dir(self) -> Path:
        return self.base_dir / "mail"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "dovecot.log"

    @property
    def run_dir(self) -> Path:
        run = self.base_dir / "run"
        if len(str(run)) <= _MAX_RUN_DIR:
            return run
        # Too long for socket paths: a private directory under the system's temporary one,
        # recorded in `run-dir` so that a later process finds the instance (and its pid).
        pointer = self.base_dir / "run-dir"
        with contextlib.suppress(OSError):
            recorded = Path(pointer.read_text().strip())
            info = recorded.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                return recorded
        self.base_dir.mkdir(parents=True, exist_ok=True)
        created = Path(tempfile.mkdtemp(prefix="penguinmails-dovecot-"))
        created.chmod(0o755)
        pointer.write_text(f"{created}\n")
        return created

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "master.pid"

    @property
    def instance_name(self) -> str:
        return "penguinmails-" + hashlib.sha256(str(self.base_dir).encode()).hexdigest()[:8]

    # --- configuration ---------------------------------------------------------------------

    def render_config(self) -> str:
        mail = self.mail_dir
        return f"""# Generated by penguinmails.sandbox.imap: a private, loopback-only Dovecot.
base_dir = {self.run_dir}
state_dir = {self.base_dir / "state"}
instance_name = {self.instance_name}
log_path = {self.log_path}
protocols = imap
listen = {self.host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login answers at once (Dovecot waits 2 s by default): tests try wrong passwords.
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_uid = {MAIL_OWNER}
mail_gid = {MAIL_OWNER}
mail_location = maildir:{mail}/%u
login_greeting = PenguinMails sandbox IMAP ready.

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = static
  args = uid={MAIL_OWNER} gid={MAIL_OWNER} home={mail}/%u
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}

# No auth penalty either (Dovecot otherwise delays the next logins from an address that failed
# one by 2 s, doubling up to 15 s): the auth process finds no penalty socket, so no penalty.
service anvil {{
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-disabled
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    def _prepare(self) -> None:
        try:
            owner = pwd.getpwnam(MAIL_OWNER)
            grp.getgrnam("dovenull")
        except KeyError as exc:
            raise DovecotMissing(
                f"The `{MAIL_OWNER}`/`dovenull` users are missing: install `{PACKAGE}`."
            ) from exc
        if os.geteuid() != 0:
            raise DovecotError(
                "The sandbox Dovecot is started by root (its login and mail processes then run "
                f"as dovenull and {MAIL_OWNER}); run this as root."
            )
        for directory in (self.base_dir, self.base_dir / "state", self.mail_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # Dovecot's mail and auth processes run as `dovecot`: every parent must let them through.
        for parent in (self.base_dir, *self.base_dir.parents):
            if not parent.stat().st_mode & 0o001:
                raise DovecotError(
                    f"{parent} is not searchable by other users, so Dovecot's `{MAIL_OWNER}` "
                    "processes cannot reach the mail tree: choose another directory."
                )
        os.chown(self.mail_dir, owner.pw_uid, owner.pw_gid)
        for directory in self.mail_dir.iterdir():
            _chown_tree(directory, owner.pw_uid, owner.pw_gid)
        if not self.passwd_path.exists():
            self._write_users({})
        self.config_path.write_text(self.render_config())

    # --- users -----------------------------------------------------------------------------

    def users(self) -> dict[str, str]:
        """Mailbox users and their passwords, as the passwd file has them."""
        users: dict[str, str] = {}
        try:
            lines = self.passwd_path.read_text().splitlines()
        except FileNotFoundError:
            return users
        for line in lines:
            name, _, rest = line.partition(":")
            password = rest.split(":", 1)[0]
            if name and password.startswith("{PLAIN}"):
                users[name] = password.removeprefix("{PLAIN}")
        return users

    def add_user(self, address: str, password: str) -> None:
        """Create (or re-password) a mailbox user; Dovecot sees it at the next login."""
        self.add_users({address: password})

    def add_users(self, users: dict[str, str]) -> None:
        """Create (or re-password) several users with one rewrite (each rewrite takes up to 1 s
        to be seen by Dovecot: see _write_users)."""
        for address, password in users.items():
            _check_credential("user", address)
            _check_credential("password", password)
        self._write_users({**self.users(), **users})

    def remove_user(self, address: str, *, delete_mail: bool = False) -> None:
        users = self.users()
        users.pop(address, None)
        self._write_users(users)
        if delete_mail:
            shutil.rmtree(self.mail_dir / address, ignore_errors=True)

    def _write_users(self, users: dict[str, str]) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in users.items())
        temporary = self.passwd_path.with_name(".passwd.tmp")
        temporary.write_text(text)
        # Readable by Dovecot's auth process (user dovecot), not by everyone.
        with contextlib.suppress(KeyError, PermissionError):
            os.chown(temporary, 0, grp.getgrnam(MAIL_OWNER).gr_gid)
        temporary.chmod(0o640)
        # Dovecot reloads a passwd-file whose mtime (whole seconds) or size changed, and stats it
        # at most once a second: give the new file a later mtime than the old one, then let that
        # second pass, so the next login sees the change.
        try:
            previous = int(self.passwd_path.stat().st_mtime)
        except FileNotFoundError:
            previous = 0
        stamp = max(int(time.time()), previous + 1)
        os.utime(temporary, (stamp, stamp))
        os.replace(temporary, self.passwd_path)
        while time.time() < stamp + 1.02:
            time.sleep(max(0.0, stamp + 1.02 - time.time()))

    # --- mail ------------------------------------------------------------------------------

    def connect(self, address: str, password: str | None = None) -> imaplib.IMAP4:
        """An imaplib connection logged in as the user (password from the passwd file)."""
        secret = self.users()[address] if password is None else password
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(address, secret)
        except BaseException:
            client.shutdown()
            raise
        return client

    def deliver(
        self, address: str, raw: bytes | str, folder: str = "INBOX", *, seen: bool = False
    ) -> int:
        """Put a raw message in the user's folder by IMAP APPEND; returns its UID."""
        message = raw.encode() if isinstance(raw, str) else raw
        message = re.sub(rb"\r?\n", b"\r\n", message)
        client = self.connect(address)
        try:
            flags = r"(\Seen)" if seen else ""
            # typeshed says append returns str; imaplib returns (status, data).
            status, data = cast("tuple[str, list[Any]]", client.append(folder, flags, "", message))
            if status != "OK":
                raise DovecotError(f"APPEND to {address}/{folder} failed: {data!r}")
            reply = data[0] if data and isinstance(data[0], bytes) else b""
            match = re.search(rb"\[APPENDUID \d+ (\d+)\]", reply)
            return int(match.group(1)) if match else 0
        finally:
            client.logout()

    # --- life cycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return _read_pid(self.pid_path)

    def running(self) -> bool:
        pid = self.pid
        return pid is not None and _pid_alive(pid)

    def start(self, timeout: float = 15.0) -> SandboxImap:
        binary = dovecot_binary()
        self._stop_stale()
        auto_port = self.port == 0
        for _attempt in range(3 if auto_port else 1):
            if auto_port:
                self.port = free_port(self.host)
            self._prepare()
            if self._launch(binary, timeout):
                return self
        raise DovecotError(f"Dovecot did not start on {self.host}:{self.port}: {self._log_tail()}")

    def _launch(self, binary: str, timeout: float) -> bool:
        # Sockets of an earlier run go (the auth penalty must find none: see render_config).
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        with (self.base_dir / "dovecot.stderr").open("ab") as stderr:
            self._process = subprocess.Popen(
                [binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if self._greets():
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                return sock.recv(256).startswith(b"* OK")
        except OSError:
            return False

    def _stop_stale(self) -> None:
        """A previous run killed before it stopped Dovecot left it running: stop it first."""
        if self.running():
            self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """`kill $(cat BASE_DIR/master.pid)`, then wait until the master process is gone."""
        pid = self.pid
        if pid is not None and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        process, self._process = self._process, None
        deadline = time.monotonic() + timeout
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        while pid is not None and _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and _pid_alive(pid):
            raise DovecotError(f"Dovecot (pid {pid}) did not stop within {timeout:.0f}s.")

    def _log_tail(self, lines: int = 5) -> str:
        text = ""
        for path in (self.log_path, self.base_dir / "dovecot.stderr"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:]) or "no log output"

    def __enter__(self) -> SandboxImap:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for parent, directories, files in os.walk(root):
        for name in (*directories, *files):
            os.chown(os.path.join(parent, name), uid, gid)
