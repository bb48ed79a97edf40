"""A small IMAP4rev1 server on loopback, speaking enough of RFC 3501 for imaplib.

Greeting with capabilities, CAPABILITY, LOGIN (one user/password pair: OK, or NO
[AUTHENTICATIONFAILED]), NOOP, LOGOUT; STARTTLS is not advertised and refused with BAD, like a
server without TLS on that port. Real sockets in a thread; tests read `logins` and `connections`.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field

CAPABILITIES = "IMAP4rev1 AUTH=PLAIN"  # no STARTTLS on purpose


def _tokens(line: str) -> list[str]:
    """Split an IMAP command line into atoms and quoted strings (with \\ escapes)."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
        elif line[i] == '"':
            i += 1
            buf = []
            while i < len(line) and line[i] != '"':
                if line[i] == "\\" and i + 1 < len(line):
                    i += 1
                buf.append(line[i])
                i += 1
            out.append("".join(buf))
            i += 1
        else:
            j = line.find(" ", i)
            j = len(line) if j < 0 else j
            out.append(line[i:j])
            i = j
    return out


@dataclass
class FakeImap:
    user: str
    password: str
    host: str = "127.0.0.1"
    logins: list[tuple[str, bool]] = field(default_factory=list)
    connections: int = 0
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> FakeImap:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def send(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self) -> None:
                fake.connections += 1
                self.send(f"* OK [CAPABILITY {CAPABILITIES}] Fake IMAP ready")
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    parts = _tokens(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    if len(parts) < 2:
                        self.send("* BAD malformed command")
                        continue
                    tag, command, args = parts[0], parts[1].upper(), parts[2:]
                    if command == "CAPABILITY":
                        self.send(f"* CAPABILITY {CAPABILITIES}")
                        self.send(f"{tag} OK CAPABILITY completed")
                    elif command == "NOOP":
                        self.send(f"{tag} OK NOOP completed")
                    elif command == "LOGIN" and len(args) == 2:
                        ok = args[0] == fake.user and args[1] == fake.password
                        fake.logins.append((args[0], ok))
                        if ok:
                            self.send(f"{tag} OK [CAPABILITY {CAPABILITIES}] LOGIN completed")
                        else:
                            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                    elif command == "STARTTLS":
                        self.send(f"{tag} BAD STARTTLS not available")
                    elif command == "LOGOUT":
                        self.send("* BYE logging out")
                        self.send(f"{tag} OK LOGOUT completed")
                        return
                    else:
                        self.send(f"{tag} BAD unknown command")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
