"""`manage.py infra postfix ...`: which IP each sender leaves from (docs/infrastructure.md,
"Which IP mail leaves from").

    infra postfix show VPS_NAME [--dir DIR]   the stored override files (printed, or written into
                                              DIR to copy to /mailu/overrides/postfix)
    infra postfix bind SENDER --ip IP         pin a domain or a mailbox to one of its tenant's IPs
"""

from __future__ import annotations

from argparse import _SubParsersAction
from pathlib import Path
from typing import Any

from django.core.management.base import OutputWrapper

from infrastructure.models import PostfixOverrides
from infrastructure.services.ip_binding import bind_sender
from infrastructure.services.ips import find_ip
from penguinmails.errors import NotFound


def add_arguments(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    postfix = sub.add_parser("postfix", help="Which IP each domain or mailbox sends from.")
    verbs = postfix.add_subparsers(dest="postfix_command", required=True, metavar="COMMAND")
    show = verbs.add_parser("show", help="The stored Postfix override files of a server.")
    show.add_argument("vps", metavar="VPS_NAME")
    show.add_argument("--dir", type=Path, help="Write the files into this directory.")
    bind = verbs.add_parser("bind", help="Pin a domain or mailbox to one of its tenant's IPs.")
    bind.add_argument("sender", metavar="SENDER", help="@example.com, example.com or a@example.com")
    bind.add_argument("--ip", required=True, metavar="IP")


def handle(options: dict[str, Any], out: OutputWrapper) -> None:
    if options["postfix_command"] == "bind":
        ip = find_ip(options["ip"])
        bind_sender(ip.tenant, sender=options["sender"], ip=ip, actor=None)
        out.write(f"{options['sender']} now sends from {ip.address}; re-render enqueued.\n")
        return
    row = PostfixOverrides.objects.select_related("vps").filter(vps__name=options["vps"]).first()
    if row is None:
        raise NotFound(f"No rendered Postfix overrides for a server named '{options['vps']}'.")
    if options["dir"] is not None:
        options["dir"].mkdir(parents=True, exist_ok=True)
        for name, content in row.files.items():
            (options["dir"] / name).write_text(content)
        out.write(f"{len(row.files)} files ({row.digest}) written to {options['dir']}.\n")
        return
    out.write(f"# {row.vps.name} {row.digest} rendered {row.rendered_at:%Y-%m-%d %H:%M} UTC\n")
    for name, content in sorted(row.files.items()):
        out.write(f"--- /mailu/overrides/postfix/{name}\n{content}")
