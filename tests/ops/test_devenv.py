"""`make run`'s launcher (penguinmails.devenv run) checks every port it will listen on before
it starts or seeds anything, and stops naming the variable that moves a taken one: it never
falls back to, or talks to, a server it did not start."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import conninfo, sql

from penguinmails.devenv import dovecot_ready, ensure_database, processes
from penguinmails.sandbox.smtp import free_port
from tests.ops.conftest import PYTHON, ROOT, subprocess_env

# If the launcher went past its check, it would migrate: against these, that fails loudly.
CLOSED_DB = "postgres://postgres@127.0.0.1:1/unreachable"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def free_udp_and_tcp_port() -> int:
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@contextmanager
def occupied(port: int, kind: socket.SocketKind) -> Iterator[None]:
    """Someone else's server on 127.0.0.1:port (TCP listening, or UDP bound)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            sock.listen()
        yield


def launch(ports: dict[str, int]) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        DATABASE_URL=CLOSED_DB,
        REDIS_URL=CLOSED_REDIS,
        PORT=None,
        **{name: str(port) for name, port in ports.items()},
    )
    return subprocess.run(
        [PYTHON, "-m", "penguinmails.devenv", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def three_free_ports() -> dict[str, int]:
    return {
        "WEB_PORT": free_port(),
        "SANDBOX_SMTP_PORT": free_port(),
        "SANDBOX_DNS_PORT": free_udp_and_tcp_port(),
        "SANDBOX_IMAP_PORT": free_port(),
        "SANDBOX_STRIPE_PORT": free_port(),
    }


@pytest.mark.parametrize(
    ("variable", "kind"),
    [
        ("WEB_PORT", socket.SOCK_STREAM),
        ("SANDBOX_SMTP_PORT", socket.SOCK_STREAM),
        ("SANDBOX_DNS_PORT", socket.SOCK_DGRAM),
        ("SANDBOX_DNS_PORT", socket.SOCK_STREAM),
        ("SANDBOX_IMAP_PORT", socket.SOCK_STREAM),
        ("SANDBOX_STRIPE_PORT", socket.SOCK_STREAM),
    ],
)
def test_it_refuses_to_start_on_a_taken_port(variable: str, kind: socket.SocketKind) -> None:
    ports = three_free_ports()
    with occupied(ports[variable], kind):
        result = launch(ports)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"port {ports[variable]} " in output and f"set {variable} to a free port" in output
    assert output.count("is in use") == 1, output  # only the taken one is named
    assert "nothing was started" in output
    # Nothing started, migrated or seeded.
    assert "migrating" not in output and "embedded" not in output, output
    assert "Traceback" not in output, output


def test_it_goes_on_when_its_ports_are_free() -> None:
    # The control: with free ports it gets past the check, to the (here unreachable) database,
    # which it names in one line.
    result = launch(three_free_ports())
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "is in use" not in output
    assert "[devenv] DATABASE_URL's server refused or could not be reached" in output, output
    assert "Connection refused" in output and "Traceback" not in output, output


def test_procfile_runs_the_sandbox_dovecot_and_delivers_into_it_only_when_it_can() -> None:
    procfile = (ROOT / "Procfile.dev").read_text()
    assert "imap: python manage.py sandbox imap" in procfile
    assert "sandbox smtp ${SANDBOX_SMTP_DELIVER:-}" in procfile
    with_imap: dict[str, str] = {}
    assert processes(with_imap, imap=True)[-1] == "imap"
    assert with_imap["SANDBOX_SMTP_DELIVER"] == "--deliver"
    without: dict[str, str] = {}
    assert "imap" not in processes(without, imap=False)
    assert without["SANDBOX_SMTP_DELIVER"] == ""
    # Every process named exists in Procfile.dev (honcho would refuse an unknown one).
    names = {line.split(":", 1)[0] for line in procfile.splitlines() if ":" in line}
    assert set(processes({}, imap=True)) <= names


def test_run_uses_the_local_stripe_unless_stripe_is_configured() -> None:
    procfile = (ROOT / "Procfile.dev").read_text()
    assert "stripe: python manage.py sandbox stripe" in procfile
    env: dict[str, str] = {"SANDBOX_STRIPE_PORT": "8499"}
    assert "stripe" in processes(env, imap=False)
    assert env["STRIPE_API_BASE"] == "http://127.0.0.1:8499"
    assert env["STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    configured = {"STRIPE_SECRET_KEY": "sk_live_x"}
    assert "stripe" not in processes(configured, imap=False)
    assert "STRIPE_API_BASE" not in configured


def test_dovecot_off_is_said_and_installed_dovecot_is_ready_for_root() -> None:
    assert dovecot_ready({"SANDBOX_IMAP": "off"}) == "SANDBOX_IMAP=off"
    if os.geteuid() == 0 and shutil.which("dovecot", path="/usr/sbin:/usr/bin"):
        assert dovecot_ready({}) is None


def test_run_creates_the_database_it_is_pointed_at_and_says_why_it_cannot() -> None:
    """DATABASE_URL naming a database not made yet (a newcomer's own PostgreSQL): `run` creates
    it instead of failing in the first migration with a traceback; a server it cannot reach or a
    URL that is not one comes back as one line."""
    name = f"pm_devenv_{secrets.token_hex(4)}"
    url = conninfo.make_conninfo(os.environ["DATABASE_URL"], dbname=name)
    admin = conninfo.make_conninfo(os.environ["DATABASE_URL"], dbname="postgres")

    def exists() -> bool:
        with psycopg.connect(admin) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return found.fetchone() is not None

    try:
        assert not exists()
        assert ensure_database(url) is None
        assert exists()
        assert ensure_database(url) is None  # there already: nothing to do
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    closed = ensure_database(f"postgres://postgres@127.0.0.1:{free_port()}/{name}")
    assert closed is not None and closed.startswith("DATABASE_URL's server refused")
    assert "\n" not in closed
    assert ensure_database("postgres://[not-a-host") is not None
