"""Issue 10, item 17: Mailu must not sign our mail with a key of its own. The platform signs
(deliverability/dkim.py); the Mailu server's rspamd gets its DKIM signing and ARC modules turned
off through the overrides its config files include."""

from __future__ import annotations

import yaml

from infrastructure.cloudinit import MailuConfig, build_user_data, compose

CONFIG = MailuConfig(
    hostname="mail1.acme-mail.example",
    mail_domain="acme-mail.example",
    admin_email="ops@acme-mail.example",
    api_token="tok_" + "a1B2c3D4" * 6,
    secret_key="Zx9" * 8,
)


def test_it_turns_off_mailus_own_dkim_and_arc_signing() -> None:
    document = yaml.safe_load(build_user_data(CONFIG).partition("\n")[2])
    files = {f["path"]: f["content"] for f in document["write_files"]}
    for name in ("dkim_signing.conf", "arc.conf"):
        content = files[f"/mailu/overrides/rspamd/{name}"]
        settings = [line for line in content.splitlines() if not line.startswith("#")]
        assert settings == ["enabled = false;"]
    # The folder is what the antispam container reads as /overrides.
    volumes = compose(CONFIG)["services"]["antispam"]["volumes"]
    assert "/mailu/overrides/rspamd:/overrides:ro" in volumes
