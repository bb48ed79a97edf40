"""The ports `make run` listens on, checked free before anything starts (penguinmails.devenv):
a taken port stops the run, naming the variable that moves it."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Port:
    variable: str  # what to set to move it
    what: str
    host: str
    number: int
    udp: bool = False  # the DNS server listens on UDP as well as TCP


def web_port(env: dict[str, str]) -> int:
    # PORT as well, the Procfile convention; honcho itself hands each process its own PORT,
    # which is why Procfile.dev reads WEB_PORT.
    return int(env.get("WEB_PORT") or env.get("PORT") or 8000)


def ports(env: dict[str, str]) -> list[Port]:
    """The TCP/UDP ports `run` listens on (the embedded PostgreSQL and Redis use unix sockets)."""
    return [
        Port("WEB_PORT", "web server", "0.0.0.0", web_port(env)),  # noqa: S104 (runserver's bind)
        Port(
            "SANDBOX_SMTP_PORT",
            "sandbox SMTP server",
            env.get("SANDBOX_SMTP_HOST", "127.0.0.1"),
            int(env.get("SANDBOX_SMTP_PORT") or 2525),
        ),
        Port(
            "SANDBOX_DNS_PORT",
            "sandbox DNS server",
            env.get("SANDBOX_DNS_HOST", "127.0.0.1"),
            int(env.get("SANDBOX_DNS_PORT") or 5353),
            udp=True,
        ),
        Port(
            "SANDBOX_IMAP_PORT",
            "sandbox IMAP server (Dovecot)",
            env.get("SANDBOX_IMAP_HOST", "127.0.0.1"),
            int(env.get("SANDBOX_IMAP_PORT") or 1143),
        ),
        Port(
            "SANDBOX_STRIPE_PORT",
            "local Stripe",
            "127.0.0.1",
            int(env.get("SANDBOX_STRIPE_PORT") or 8420),
        ),
    ]


def _in_use(port: Port) -> str | None:
    """Why `port` cannot be listened on, or None. Binding, not connecting: a server on another
    address of the same port, or one that does not answer, counts as taken too."""
    kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if port.udp else [socket.SOCK_STREAM]
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                # As servers do: a port whose old connections linger in TIME_WAIT is free.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((port.host, port.number))
            except OSError as exc:
                proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                return f"{proto} {port.host}:{port.number}: {exc.strerror or exc}"
    return None


def preflight(env: dict[str, str]) -> list[str]:
    """One line per port that is taken, naming the variable that moves it."""
    problems = []
    for port in ports(env):
        reason = _in_use(port)
        if reason:
            problems.append(
                f"port {port.number} for the {port.what} is in use ({reason}); "
                f"set {port.variable} to a free port, e.g. `make run {port.variable}="
                f"{port.number + 1}`"
            )
    return problems
