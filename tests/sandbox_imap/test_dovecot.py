"""The sandbox IMAP server is a real Dovecot: what the inbound poller relies on works against it
(LOGIN, SPECIAL-USE, APPEND, UID SEARCH, a stable UIDVALIDITY, UID MOVE), users come and go by
rewriting the passwd file, and stopping it leaves no process behind."""

from __future__ import annotations

import imaplib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from penguinmails.sandbox import imap as sandbox_imap
from penguinmails.sandbox.imap import DovecotMissing, SandboxImap
from tests.dovecot import running_dovecot

ROOT = Path(__file__).resolve().parents[2]


def _message(subject: str) -> bytes:
    return (
        f"From: Prospect <prospect@example.test>\r\nTo: rep@sandbox.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
    ).encode()


def _uidvalidity(client: imaplib.IMAP4, folder: str) -> int:
    status, _ = client.select(folder, readonly=True)
    assert status == "OK"
    _, data = client.response("UIDVALIDITY")
    return int(data[0])


def _uids(client: imaplib.IMAP4, folder: str, subject: str) -> list[int]:
    client.select(folder)
    status, data = client.uid("SEARCH", "HEADER", "Subject", f'"{subject}"')
    assert status == "OK"
    return [int(uid) for uid in data[0].split()]


def test_a_user_logs_in_and_the_server_offers_what_the_poller_needs(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.port)
    assert client.login(*user)[0] == "OK"
    _, data = client.capability()  # after LOGIN: the full list
    capabilities = set(data[0].decode().upper().split())
    client.logout()
    assert {"SPECIAL-USE", "UIDPLUS", "MOVE", "IDLE"} <= capabilities
    assert "STARTTLS" not in capabilities  # ssl = no: plain loopback only


def test_list_with_special_use_finds_the_junk_folder(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    client = dovecot.connect(*user)
    status, data = client._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    _, listed = client._untagged_response(status, data, "LIST")
    client.logout()
    uses = dict(
        reversed(re.match(rb'\((.*?)\) "/" "?([^"]*)"?', line).groups())  # type: ignore[union-attr]
        for line in listed
    )
    assert uses[b"Junk"] == rb"\Junk"
    assert {b"Sent", b"Trash"} <= set(uses)


def test_append_to_inbox_and_junk_then_uid_search_finds_each(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    address = user[0]
    inbox_uid = dovecot.deliver(address, _message("to-inbox"))
    junk_uid = dovecot.deliver(address, _message("to-junk"), "Junk")
    client = dovecot.connect(address)
    assert _uids(client, "INBOX", "to-inbox") == [inbox_uid]
    assert _uids(client, "Junk", "to-junk") == [junk_uid]
    assert _uids(client, "INBOX", "to-junk") == []
    status, data = client.uid("FETCH", str(inbox_uid), "(FLAGS)")
    client.logout()
    assert b"\\Seen" not in data[0]  # delivered unread


def test_uidvalidity_and_uids_stay_the_same_across_reconnects(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    address = user[0]
    uid = dovecot.deliver(address, _message("stable"))
    first = dovecot.connect(address)
    validity = {folder: _uidvalidity(first, folder) for folder in ("INBOX", "Junk")}
    first.logout()
    dovecot.deliver(address, _message("later"))
    second = dovecot.connect(address)
    assert {folder: _uidvalidity(second, folder) for folder in ("INBOX", "Junk")} == validity
    assert _uids(second, "INBOX", "stable") == [uid]
    second.logout()


def test_uid_move_takes_a_message_from_junk_to_the_inbox(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    address = user[0]
    uid = dovecot.deliver(address, _message("not-spam"), "Junk")
    client = dovecot.connect(address)
    client.select("Junk")
    assert client.uid("MOVE", str(uid), "INBOX")[0] == "OK"
    assert _uids(client, "Junk", "not-spam") == []
    assert len(_uids(client, "INBOX", "not-spam")) == 1
    client.logout()


def test_a_wrong_password_and_an_unknown_user_are_refused(
    dovecot: SandboxImap, user: tuple[str, str]
) -> None:
    for address, password in ((user[0], "wrong"), ("nobody@sandbox.test", "secret")):
        client = imaplib.IMAP4(dovecot.host, dovecot.port)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login(address, password)
        client.shutdown()


def test_users_are_added_repassworded_and_removed_while_it_runs(dovecot: SandboxImap) -> None:
    address = "newcomer@sandbox.test"
    dovecot.add_user(address, "first")
    dovecot.connect(address, "first").logout()
    dovecot.add_user(address, "other")  # same length: the rewrite is still seen
    with pytest.raises(imaplib.IMAP4.error):
        dovecot.connect(address, "first")
    dovecot.connect(address, "other").logout()
    dovecot.remove_user(address, delete_mail=True)
    with pytest.raises(imaplib.IMAP4.error):
        dovecot.connect(address, "other")
    assert address not in dovecot.users()


def test_credentials_that_would_break_the_passwd_file_are_refused(dovecot: SandboxImap) -> None:
    for address, password in (("a:b@sandbox.test", "x"), ("a@sandbox.test", "p\nw"), ("", "x")):
        with pytest.raises(ValueError, match="may not"):
            dovecot.add_user(address, password)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def test_stopping_leaves_no_process_and_a_stale_instance_is_replaced() -> None:
    with running_dovecot({"solo@sandbox.test": "pw"}) as server:
        first = server.pid
        assert first is not None and server.running()
        # A second object on the same directory (a restarted `sandbox imap`) stops the first.
        again = SandboxImap(server.base_dir, port=server.port).start()
        second = again.pid
        assert second != first and not sandbox_imap._pid_alive(first)
        children = _children(second)
        assert children  # log, config, anvil, imap-login ...
        again.deliver("solo@sandbox.test", _message("survives"))
        again.stop()
        assert not sandbox_imap._pid_alive(second)
        assert not any(sandbox_imap._pid_alive(child) for child in children)
        assert not again.running()
        # Mail survives a restart.
        again.start()
        client = again.connect("solo@sandbox.test")
        assert len(_uids(client, "INBOX", "survives")) == 1
        client.logout()


def test_a_missing_dovecot_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox_imap.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(DovecotMissing, match="dovecot-imapd"):
        SandboxImap(tmp_path).start()


def test_the_sandbox_command_runs_it_until_sigterm() -> None:
    with running_dovecot() as probe:  # a free directory and port; the command takes them over
        base, port = probe.base_dir, probe.port
        probe.stop()
        command = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "sandbox",
                "imap",
                "--dir",
                str(base),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert command.stdout is not None
            banner = command.stdout.readline()
            assert f"127.0.0.1:{port}" in banner, banner + command.stdout.read()
            pid = SandboxImap(base).pid
            assert pid is not None and sandbox_imap._pid_alive(pid)
            command.send_signal(signal.SIGTERM)
            assert command.wait(20) == 0
            assert not sandbox_imap._pid_alive(pid)
        finally:
            if command.poll() is None:
                command.kill()
                command.wait()


def test_the_command_refuses_a_non_loopback_address() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "imap",
            "--host",
            "192.0.2.1",
            "--dir",
            "/nowhere",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "loopback only" in result.stderr
