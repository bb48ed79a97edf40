"""The dunning ladder's world: the local Stripe (tests/stripe), the sandbox SMTP server and a
running campaign (tests/sending), and a server at the local VPS provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.providers import LocalProvider
from tests.sending.conftest import sandbox  # noqa: F401 - the fixture
from tests.stripe.conftest import StripeWorld, local_stripe, world  # noqa: F401 - the fixtures


@pytest.fixture
def provider(settings: Any, tmp_path: Path) -> LocalProvider:
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    return LocalProvider(settings.LOCAL_VPS_STATE_FILE, activate_after_polls=0)


def make_server(stripe_world: StripeWorld, provider: LocalProvider) -> VpsInstance:
    """An active server of acme's at the local provider."""
    ref = provider.create_server(name="acme-1", plan="small", location="local", image="debian")
    provider.get_server(ref.id)  # active after its first poll
    return VpsInstance.objects.create(
        tenant=stripe_world.cast.tenant,
        provider="local",
        provider_id=ref.id,
        name="acme-1",
        hostname="mail.acme-1.test",
        size="small",
        status=VpsStatus.ACTIVE,
    )
