"""`manage.py infra shared ...`: the platform's shared mail servers (plans without dedicated
servers put mailboxes on them). Django does not load `_`-prefixed modules as commands.

    infra shared add HOSTNAME --api-url URL --api-token-file PATH|-
                     [--smtp-host H] [--smtp-port 587] [--imap-host H] [--imap-port 993]
    infra shared list [--json]
    infra shared retire HOSTNAME

The token is read from a file or stdin (`-`), never from the command line, where it would land
in the shell history and the process list.
"""

from __future__ import annotations

import json
import sys
from argparse import _SubParsersAction
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from infrastructure.services.mailservers import (
    find_shared_mail_server,
    register_shared_mail_server,
    retire_shared_mail_server,
    shared_mail_servers,
)


def add_arguments(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    shared = sub.add_parser("shared", help="The platform's shared mail servers.")
    shared_sub = shared.add_subparsers(dest="shared_command", required=True, metavar="COMMAND")
    add = shared_sub.add_parser("add", help="Register a shared Mailu server.")
    add.add_argument("hostname", metavar="HOSTNAME")
    add.add_argument("--api-url", required=True, help="Mailu's API, e.g. https://HOST/api/v1")
    add.add_argument(
        "--api-token-file", required=True, metavar="PATH", help="File holding the token; - = stdin"
    )
    add.add_argument("--smtp-host", help="Default: HOSTNAME")
    add.add_argument("--smtp-port", type=int, default=587)
    add.add_argument("--imap-host", help="Default: HOSTNAME")
    add.add_argument("--imap-port", type=int, default=993)
    listing = shared_sub.add_parser("list", help="Shared servers with their mailbox counts.")
    listing.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    retire = shared_sub.add_parser("retire", help="Put no new mailboxes on a shared server.")
    retire.add_argument("hostname", metavar="HOSTNAME")


def handle(options: dict[str, Any], stdout: OutputWrapper) -> None:
    command = options["shared_command"]
    if command == "add":
        server = register_shared_mail_server(
            hostname=options["hostname"],
            smtp_host=options["smtp_host"] or options["hostname"],
            smtp_port=options["smtp_port"],
            imap_host=options["imap_host"] or options["hostname"],
            imap_port=options["imap_port"],
            mailu_api_url=options["api_url"],
            api_token=_read_token(options["api_token_file"]),
            actor=None,
        )
        stdout.write(f"{server.hostname}: registered, {server.status} (id {server.pk})")
    elif command == "list":
        rows = shared_mail_servers()
        if options["json"]:
            stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            stdout.write("No shared mail servers.")
        for row in rows:
            stdout.write(
                f"{row['hostname']} {row['status']} {row['kind']} smtp={row['smtp']} "
                f"imap={row['imap'] or '-'} mailboxes={row['mailboxes']}"
            )
    else:
        server = retire_shared_mail_server(find_shared_mail_server(options["hostname"]), actor=None)
        stdout.write(f"{server.hostname}: retired; new mailboxes go on other shared servers.")


def _read_token(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text()
    except OSError as exc:
        raise CommandError(f"Cannot read the API token file {source}: {exc.strerror}.") from None
