"""The generated cloud-init user data, mailu.env and docker-compose.yml, parsed back."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest
import yaml

from infrastructure.cloudinit import (
    ConfigError,
    MailuConfig,
    TlsFlavor,
    build_user_data,
    compose,
    mailu_env,
)

CONFIG = MailuConfig(
    hostname="mail1.acme-mail.example",
    mail_domain="acme-mail.example",
    admin_email="ops@acme-mail.example",
    api_token="tok_" + "a1B2c3D4" * 6,
    secret_key="Zx9" * 8,
    dkim_selector="dkim",
    tls_flavor=TlsFlavor.LETSENCRYPT,
    extra_hostnames=("mail2.acme-mail.example",),
    ratelimit_exemptions=("203.0.113.7",),
)


def parse(user_data: str) -> dict[str, Any]:
    first, _, rest = user_data.partition("\n")
    assert first == "#cloud-config"  # cloud-init ignores user data without this header
    document = yaml.safe_load(rest)
    assert isinstance(document, dict)
    return document


def written(document: dict[str, Any], path: str) -> dict[str, Any]:
    [entry] = [f for f in document["write_files"] if f["path"] == path]
    return entry


def parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep == "=", line
        assert key not in env, f"{key} twice"
        env[key] = value
    return env


def test_it_writes_a_mailu_env_with_mailu_2_names() -> None:
    document = parse(build_user_data(CONFIG))
    env_file = written(document, "/mailu/mailu.env")
    assert env_file["permissions"] == "0600"
    env = parse_env(env_file["content"])

    assert env["DOMAIN"] == "acme-mail.example"
    assert env["HOSTNAMES"] == "mail1.acme-mail.example,mail2.acme-mail.example"
    assert env["POSTMASTER"] == "ops"
    assert env["TLS_FLAVOR"] == "letsencrypt"
    assert env["SECRET_KEY"] == CONFIG.secret_key
    assert env["API"] == "true"
    assert env["WEB_API"] == "/api"
    assert env["API_TOKEN"] == CONFIG.api_token
    assert env["DKIM_SELECTOR"] == "dkim"
    assert env["SUBNET"] == "192.168.203.0/24"
    assert env["AUTH_RATELIMIT_EXEMPTION"] == "203.0.113.7"
    assert env["MESSAGE_RATELIMIT"] == "2000/day"


def test_it_writes_a_compose_file_that_uses_the_env_and_subnet() -> None:
    document = parse(build_user_data(CONFIG))
    compose_file = yaml.safe_load(written(document, "/mailu/docker-compose.yml")["content"])
    services = compose_file["services"]

    assert {"front", "admin", "imap", "smtp", "antispam", "redis", "resolver"} <= set(services)
    for name in ("front", "admin", "imap", "smtp", "antispam", "resolver"):
        assert services[name]["env_file"] == "mailu.env"
        assert services[name]["image"].startswith("ghcr.io/mailu/")
        assert services[name]["image"].endswith(":2024.06")
    subnet = compose_file["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert subnet == "192.168.203.0/24"
    resolver_ip = services["resolver"]["networks"]["default"]["ipv4_address"]
    assert ipaddress.ip_address(resolver_ip) in ipaddress.ip_network(subnet)
    assert services["smtp"]["dns"] == [resolver_ip]
    assert "25:25" in services["front"]["ports"] and "587:587" in services["front"]["ports"]
    assert "/mailu/dkim:/dkim" in services["admin"]["volumes"]


def test_it_installs_docker_and_starts_mailu() -> None:
    document = parse(build_user_data(CONFIG))
    assert "docker.io" in document["packages"]
    assert document["fqdn"] == "mail1.acme-mail.example"
    assert document["hostname"] == "mail1"
    commands = [" ".join(cmd) for cmd in document["runcmd"]]
    assert any(c.startswith("systemctl enable --now docker") for c in commands)
    assert commands[-1].startswith("docker compose -f /mailu/docker-compose.yml")
    assert commands[-1].endswith("up -d")


def test_it_follows_the_configured_selector_and_tls_flavor() -> None:
    config = replace(CONFIG, dkim_selector="mailu", tls_flavor=TlsFlavor.MAIL, mailu_version="2.0")
    env = mailu_env(config)
    assert (env["DKIM_SELECTOR"], env["TLS_FLAVOR"]) == ("mailu", "mail")
    assert compose(config)["services"]["smtp"]["image"] == "ghcr.io/mailu/postfix:2.0"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hostname", "mail.acme-mail.example\nAPI=false"),
        ("hostname", "mail.acme-mail.example\n"),
        ("mail_domain", "acme mail.example"),
        ("api_token", "tok_" + "a" * 40 + "\nAPI_TOKEN=stolen"),
        ("api_token", "tok_" + "a" * 40 + "$HOME"),
        ("api_token", "abc"),  # Mailu refuses tokens shorter than 4 characters (403)
        ("secret_key", "short"),
        ("dkim_selector", "dkim._domainkey"),
        ("admin_email", "ops@elsewhere.example"),
        ("admin_email", 'o"ps@acme-mail.example'),
        ("message_ratelimit", "lots"),
        ("subnet", "8.8.8.0/24"),
        ("mailu_version", "2024.06;rm -rf /"),
        ("extra_env", {"LOG_LEVEL": "INFO\nAPI=false"}),
    ],
)
def test_it_refuses_values_that_could_inject_into_the_env(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        build_user_data(replace(CONFIG, **{field: value}))
    assert field.split("[")[0] in str(caught.value)


def test_it_does_not_echo_secrets_in_errors() -> None:
    bad = "tok_" + "s" * 40 + "\n"
    with pytest.raises(ConfigError) as caught:
        mailu_env(replace(CONFIG, api_token=bad))
    assert "s" * 40 not in str(caught.value)


def test_it_stays_within_the_user_data_size_limit() -> None:
    assert len(build_user_data(CONFIG).encode()) < 16_384
