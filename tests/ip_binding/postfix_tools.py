"""Real Postfix tools for checking generated configuration, without a Postfix daemon: the
system's `postconf`/`postmap` when installed, else Debian's `postfix` package fetched with
`apt-get download` and unpacked with `dpkg -x` (nothing installed, no service started)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# A main.cf the tools accept on a machine where no `postfix` user exists: owners that exist on
# every Debian system, distinct from default_privs (nobody).
MAIN_CF = "compatibility_level = 3.6\nmail_owner = daemon\nsetgid_group = mail\n"
MASTER_CF = "smtp unix - - n - - smtp\n"


@dataclass(frozen=True)
class PostfixTools:
    sbin: Path
    env: dict[str, str]

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.sbin / tool), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=check,
        )

    def config_dir(self, where: Path) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        (where / "main.cf").write_text(MAIN_CF)
        (where / "master.cf").write_text(MASTER_CF)
        return where


def find_tools(cache: Path) -> PostfixTools | str:
    """The tools, or why they are not available."""
    system = shutil.which("postconf") or (
        "/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None
    )
    if system:
        return PostfixTools(Path(system).parent, dict(os.environ))
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        return "no postconf installed and no apt-get/dpkg to fetch Debian's postfix"
    try:
        subprocess.run(
            ["apt-get", "download", "postfix"],
            cwd=cache,
            capture_output=True,
            timeout=120,
            check=True,
        )
        (deb,) = cache.glob("postfix_*.deb")
        subprocess.run(
            ["dpkg", "-x", str(deb), str(cache / "root")], capture_output=True, check=True
        )
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        return f"could not fetch Debian's postfix package ({exc})"
    env = {**os.environ, "LD_LIBRARY_PATH": str(cache / "root/usr/lib/postfix")}
    return PostfixTools(cache / "root/usr/sbin", env)
