"""Cloud-init user data that turns a fresh VPS into a Mailu 2.x mail server.

`build_user_data(MailuConfig(...))` returns a `#cloud-config` document that installs Docker,
writes `/mailu/mailu.env` and `/mailu/docker-compose.yml`, and starts Mailu with its admin API
enabled (`API=true`, `API_TOKEN`) so the control plane can create domains, DKIM keys and users.

It also hardens the server: an nftables firewall (infrastructure/firewall.py: mail, web and IMAP
open to the world, SSH and node_exporter to STAFF_NETWORKS only) and node_exporter, which the
control plane reads for CPU, memory and disk (services.resources). Mailu's antivirus (ClamAV)
runs when the config says the server has the memory for it (`antivirus=True`).

Both documents are emitted as JSON, which is YAML too (cloud-init and Docker Compose both load
them with a YAML parser): production then needs no YAML emitter, and every string is quoted
exactly. Values going into `mailu.env` are validated against strict patterns instead of being
escaped: Compose's env-file format has no escaping that is safe for newlines, quotes and `$`
(interpolated since Compose v2), so such characters are refused outright.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from infrastructure.firewall import NFTABLES_PATH, FirewallError, parse_networks, ruleset

MAILU_ROOT = "/mailu"
# OpenStack (which Hostwinds' cloud runs on) caps user data at 64 KiB.
MAX_USER_DATA_BYTES = 65535

# Ports Mailu's front publishes: web, SMTP, submission(s), IMAP(S). Mailu's own template also
# publishes POP3(S) and ManageSieve (110, 995, 4190); the firewall keeps the world to this list,
# and Docker's published ports bypass the host's input chain, so they are not published at all.
MAILU_PORTS = (80, 443, 25, 465, 587, 143, 993)
# Mailu 2024.06's antivirus service (its setup template): ClamAV's own image.
CLAMAV_IMAGE = "clamav/clamav-debian:1.2.3-45"
NODE_EXPORTER_PACKAGE = "prometheus-node-exporter"  # Ubuntu's package (universe)


class TlsFlavor(enum.StrEnum):
    """Mailu's `TLS_FLAVOR` values."""

    LETSENCRYPT = "letsencrypt"
    CERT = "cert"
    MAIL = "mail"
    MAIL_LETSENCRYPT = "mail-letsencrypt"
    NOTLS = "notls"


class ConfigError(ValueError):
    """A value that cannot go into Mailu's configuration; the message names the field."""


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
_LOCAL_PART = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
# Secrets we generate are url-safe base64 / hex; nothing that Compose or a shell would interpret.
_TOKEN = re.compile(r"^[A-Za-z0-9_.~-]+$")
_SELECTOR = re.compile(rf"^{_LABEL}$")
_RATELIMIT = re.compile(r"^\d+/(second|minute|hour|day)$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class MailuConfig:
    """What one Mailu server needs to know.

    `hostname` is the server's FQDN (Mailu's first HOSTNAMES entry, which its DNS records and
    TLS certificate use); `mail_domain` is Mailu's main DOMAIN; `admin_email` must be in that
    domain because Mailu builds the postmaster address (also the Let's Encrypt contact) as
    POSTMASTER@DOMAIN.
    """

    hostname: str
    mail_domain: str
    admin_email: str
    api_token: str
    secret_key: str
    dkim_selector: str = "dkim"  # Mailu's default; the seed's "mailu" is a setting, not a default
    tls_flavor: TlsFlavor = TlsFlavor.LETSENCRYPT
    extra_hostnames: tuple[str, ...] = ()
    mailu_version: str = "2024.06"
    # Mailu's private Docker network; its resolver takes the last usable address.
    subnet: str = "192.168.203.0/24"
    # Mailu caps what each user may send (default 200/day): our own per-mailbox limits and
    # warm-up plans are the real throttle, so the server-side cap only has to stay above them.
    message_ratelimit: str = "2000/day"
    # Addresses exempt from Mailu's auth rate limit: the control plane's egress IPs, so a
    # misconfigured token does not lock the API out for an hour.
    ratelimit_exemptions: tuple[str, ...] = ()
    timezone: str = "Etc/UTC"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Files for Mailu's postfix /overrides mount (infrastructure/postfix.py: which IP each
    # sending domain leaves from), by name; written to /mailu/overrides/postfix.
    postfix_overrides: dict[str, str] = field(default_factory=dict)
    # CIDRs allowed to SSH and node_exporter (settings.STAFF_NETWORKS); empty closes both.
    staff_networks: tuple[str, ...] = ()
    # Mailu's ClamAV (ANTIVIRUS=clamav): only where the server has the memory for it.
    antivirus: bool = False

    def validated(self) -> MailuConfig:
        """Self, after checking every value; raises ConfigError naming the first bad field."""
        for name in ("hostname", "mail_domain"):
            _check(name, getattr(self, name).lower(), _HOSTNAME, "a DNS host name")
        for extra in self.extra_hostnames:
            _check("extra_hostnames", extra.lower(), _HOSTNAME, "a DNS host name")
        local, _, domain = self.admin_email.lower().partition("@")
        _check("admin_email", local, _LOCAL_PART, "a simple address (letters, digits, . _ + -)")
        if domain != self.mail_domain.lower():
            raise ConfigError(
                f"admin_email must be in the mail domain {self.mail_domain!r}: Mailu builds the "
                "postmaster address as POSTMASTER@DOMAIN."
            )
        # Mailu answers 403 to any token shorter than 4 characters; ours are much longer.
        _check("api_token", self.api_token, _TOKEN, "url-safe characters", min_length=32)
        _check("secret_key", self.secret_key, _TOKEN, "url-safe characters", min_length=16)
        _check("dkim_selector", self.dkim_selector.lower(), _SELECTOR, "a DNS label")
        _check("mailu_version", self.mailu_version, _VERSION, "an image tag")
        _check("message_ratelimit", self.message_ratelimit, _RATELIMIT, "N/second|minute|hour|day")
        _check("timezone", self.timezone, re.compile(r"^[A-Za-z0-9_+/-]{1,64}$"), "a tz name")
        TlsFlavor(self.tls_flavor)
        try:
            network = ipaddress.IPv4Network(self.subnet)
        except ValueError:
            raise ConfigError(f"subnet must be an IPv4 network, got {self.subnet!r}.") from None
        if network.num_addresses < 16 or not network.is_private:
            raise ConfigError("subnet must be a private IPv4 network of at least 16 addresses.")
        for ip in self.ratelimit_exemptions:
            try:
                ipaddress.ip_network(ip, strict=False)
            except ValueError:
                raise ConfigError(f"ratelimit_exemptions: {ip!r} is not an address.") from None
        try:
            parse_networks(self.staff_networks)
        except FirewallError as exc:
            raise ConfigError(str(exc)) from None
        for name in self.postfix_overrides:
            _check("postfix_overrides", name, re.compile(r"^[a-z0-9_]+\.[a-z0-9]+$"), "a file name")
        for key, value in self.extra_env.items():
            _check("extra_env key", key, re.compile(r"^[A-Z][A-Z0-9_]{0,63}$"), "UPPER_SNAKE")
            _check(f"extra_env[{key}]", value, re.compile(r"^[A-Za-z0-9_.,:/@+=~-]*$"), "plain")
        return self

    @property
    def resolver_ip(self) -> str:
        network = ipaddress.IPv4Network(self.subnet)
        return str(network.broadcast_address - 1)


def _check(
    name: str, value: str, pattern: re.Pattern[str], what: str, *, min_length: int = 1
) -> None:
    # fullmatch on top of the anchors: `$` alone would accept a trailing newline.
    if len(value) < min_length or not pattern.fullmatch(value):
        shown = value if name not in ("api_token", "secret_key") else "(hidden)"
        raise ConfigError(
            f"{name} must be {what}"
            + (f" of at least {min_length} characters" if min_length > 1 else "")
            + f", got {shown!r}."
        )


def mailu_env(config: MailuConfig) -> dict[str, str]:
    """Mailu 2.x `mailu.env` settings (names from Mailu's configuration.py and setup wizard)."""
    config.validated()
    hostnames = [config.hostname.lower(), *(h.lower() for h in config.extra_hostnames)]
    postmaster = config.admin_email.lower().partition("@")[0]
    env = {
        "SECRET_KEY": config.secret_key,
        "SUBNET": config.subnet,
        "DOMAIN": config.mail_domain.lower(),
        "HOSTNAMES": ",".join(dict.fromkeys(hostnames)),
        "POSTMASTER": postmaster,
        "TLS_FLAVOR": str(config.tls_flavor),
        # The admin REST API (Mailu 2.0+), reached through the front at WEB_API.
        "API": "true",
        "WEB_API": "/api",
        "API_TOKEN": config.api_token,
        # The web admin UI is not needed: the control plane uses the API.
        "ADMIN": "false",
        "WEB_ADMIN": "/admin",
        "WEBMAIL": "none",
        "WEBDAV": "none",
        "ANTIVIRUS": "clamav" if config.antivirus else "none",
        "DKIM_SELECTOR": config.dkim_selector.lower(),
        "DMARC_RUA": postmaster,
        "DMARC_RUF": postmaster,
        "MESSAGE_SIZE_LIMIT": "50000000",
        "MESSAGE_RATELIMIT": config.message_ratelimit,
        "AUTH_RATELIMIT_IP": "60/hour",
        "AUTH_RATELIMIT_USER": "100/day",
        "RECIPIENT_DELIMITER": "+",
        "DISABLE_STATISTICS": "True",
        "LOG_DRIVER": "json-file",
        "LOG_LEVEL": "WARNING",
        "COMPOSE_PROJECT_NAME": "mailu",
        "TZ": config.timezone,
    }
    if config.ratelimit_exemptions:
        env["AUTH_RATELIMIT_EXEMPTION"] = ",".join(config.ratelimit_exemptions)
    env.update(config.extra_env)
    return env


def render_env(env: dict[str, str]) -> str:
    lines = ["# Written by PenguinMails provisioning; regenerated on reconfigure."]
    for key, value in env.items():
        if any(ch in value for ch in "\r\n\0") or "=" in key:
            raise ConfigError(f"{key} cannot be written to an env file.")  # belt and braces
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def compose(config: MailuConfig) -> dict[str, Any]:
    """Mailu's docker-compose document, after Mailu's own setup template (compose flavor)."""
    config.validated()
    image = "ghcr.io/mailu/{}:" + config.mailu_version
    dns = [config.resolver_ip]

    def service(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "image": image.format(name),
            "restart": "always",
            "env_file": "mailu.env",
            "depends_on": ["resolver"],
            "dns": dns,
            **extra,
        }

    # Published on every address: a VPS with secondary IPs receives and submits on all of them.
    ports = [f"{port}:{port}" for port in MAILU_PORTS]
    services: dict[str, Any] = {
        "redis": {
            "image": "redis:alpine",
            "restart": "always",
            "volumes": [f"{MAILU_ROOT}/redis:/data"],
            "depends_on": ["resolver"],
            "dns": dns,
        },
        "resolver": {
            "image": image.format("unbound"),
            "restart": "always",
            "env_file": "mailu.env",
            "networks": {"default": {"ipv4_address": config.resolver_ip}},
        },
        "front": service(
            "nginx",
            ports=ports,
            volumes=[
                f"{MAILU_ROOT}/certs:/certs",
                f"{MAILU_ROOT}/overrides/nginx:/overrides:ro",
            ],
        ),
        "admin": service(
            "admin",
            volumes=[f"{MAILU_ROOT}/data:/data", f"{MAILU_ROOT}/dkim:/dkim"],
            depends_on=["redis", "resolver"],
        ),
        "imap": service(
            "dovecot",
            volumes=[
                f"{MAILU_ROOT}/mail:/mail",
                f"{MAILU_ROOT}/overrides/dovecot:/overrides:ro",
            ],
            depends_on=["front", "resolver"],
        ),
        "smtp": service(
            "postfix",
            volumes=[
                f"{MAILU_ROOT}/mailqueue:/queue",
                f"{MAILU_ROOT}/overrides/postfix:/overrides:ro",
            ],
            depends_on=["front", "resolver"],
        ),
        # rspamd also signs outgoing mail in Mailu 2.x; RSPAMD_OVERRIDES turns that off.
        "antispam": service(
            "rspamd",
            hostname="antispam",
            volumes=[
                f"{MAILU_ROOT}/filter:/var/lib/rspamd",
                f"{MAILU_ROOT}/overrides/rspamd:/overrides:ro",
            ],
            depends_on=["front", "redis", "resolver"],
        ),
    }
    if config.antivirus:
        services["antivirus"] = _antivirus(dns)
        services["antispam"]["depends_on"].append("antivirus")
    return {
        "services": services,
        "networks": {
            "default": {
                "driver": "bridge",
                "ipam": {"driver": "default", "config": [{"subnet": config.subnet}]},
            }
        },
    }


def _antivirus(dns: list[str]) -> dict[str, Any]:
    """ClamAV as Mailu 2024.06's template runs it; rspamd reaches it at antivirus:3310 (Mailu's
    ANTIVIRUS_ADDRESS default). Its signatures (~300 MB, refreshed by freshclam) live under
    filter/clamav; clamd keeps them in memory, hence the memory floor (ANTIVIRUS_MIN_MEMORY_MB)."""
    return {
        "image": CLAMAV_IMAGE,
        "restart": "always",
        "volumes": [f"{MAILU_ROOT}/filter/clamav:/var/lib/clamav"],
        "depends_on": ["resolver"],
        "dns": dns,
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                "kill -0 `cat /tmp/clamd.pid` && kill -0 `cat /tmp/freshclam.pid`",
            ],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "10s",
        },
    }


# The platform signs every campaign message itself with the key it publishes
# (deliverability/dkim.py, docs/dns.md "Who signs"). Mailu's rspamd would add a signature with a
# key of its own (generated by `POST /domain/{d}/dkim`, never published by us) and ARC-seal with
# it: both modules are turned off. Mailu's dkim_signing.conf and arc.conf end in
# `.include(try=true,priority=1,duplicate=merge) "/overrides/<name>"`, and /mailu/overrides/rspamd
# is mounted at /overrides in the antispam container.
RSPAMD_OVERRIDES = {
    name: (
        "# Written by PenguinMails provisioning: the platform DKIM-signs its own mail\n"
        "# with the key it publishes; a signature with Mailu's unpublished key would fail.\n"
        "enabled = false;\n"
    )
    for name in ("dkim_signing.conf", "arc.conf")
}


def build_user_data(config: MailuConfig) -> str:
    """The `#cloud-config` user data for a new Mailu VPS."""
    config.validated()
    env_text = render_env(mailu_env(config))
    compose_text = json.dumps(compose(config), indent=2) + "\n"
    document = {
        "hostname": config.hostname.lower().split(".", 1)[0],
        "fqdn": config.hostname.lower(),
        "prefer_fqdn_over_hostname": True,
        "manage_etc_hosts": True,
        "package_update": True,
        # Ubuntu's packages (the configured image is Ubuntu 22.04+): Docker Engine and the
        # Compose v2 plugin, without fetching a script from the internet.
        # nftables for the firewall; node_exporter for CPU, memory and disk (on :9100, which
        # the firewall opens to the staff networks only).
        "packages": [
            "docker.io",
            "docker-compose-v2",
            "ca-certificates",
            "nftables",
            NODE_EXPORTER_PACKAGE,
        ],
        "write_files": [
            {
                # Loaded at boot by nftables.service and at once by runcmd below.
                "path": NFTABLES_PATH,
                "permissions": "0644",
                "owner": "root:root",
                "content": ruleset(config.staff_networks),
            },
            {
                "path": f"{MAILU_ROOT}/mailu.env",
                "permissions": "0600",  # holds SECRET_KEY and API_TOKEN
                "owner": "root:root",
                "content": env_text,
            },
            {
                "path": f"{MAILU_ROOT}/docker-compose.yml",
                "permissions": "0644",
                "owner": "root:root",
                "content": compose_text,
            },
            *(
                {
                    "path": f"{MAILU_ROOT}/overrides/rspamd/{name}",
                    "permissions": "0644",
                    "owner": "root:root",
                    "content": content,
                }
                for name, content in RSPAMD_OVERRIDES.items()
            ),
            *(
                {
                    "path": f"{MAILU_ROOT}/overrides/postfix/{name}",
                    "permissions": "0644",
                    "owner": "root:root",
                    "content": content,
                }
                for name, content in sorted(config.postfix_overrides.items())
            ),
        ],
        "runcmd": [
            # The firewall first: nothing but mail, web and IMAP is open from here on.
            ["nft", "-f", NFTABLES_PATH],
            ["systemctl", "enable", "nftables"],
            ["systemctl", "enable", "--now", NODE_EXPORTER_PACKAGE],
            ["systemctl", "enable", "--now", "docker"],
            ["mkdir", "-p", *(f"{MAILU_ROOT}/{d}" for d in ("certs", "data", "dkim", "mail"))],
            # env_file paths resolve next to the compose file.
            [
                "docker",
                "compose",
                "-f",
                f"{MAILU_ROOT}/docker-compose.yml",
                "-p",
                "mailu",
                "up",
                "-d",
            ],
        ],
        "final_message": "PenguinMails: Mailu started after $UPTIME seconds",
    }
    user_data = "#cloud-config\n" + json.dumps(document, indent=2) + "\n"
    if len(user_data.encode()) > MAX_USER_DATA_BYTES:
        raise ConfigError("The generated user data is larger than the 64 KiB cloud-init accepts.")
    return user_data
