"""Which captured messages a tenant may read on its host (the sandbox pages).

The sandbox SMTP server is one Maildir for the whole platform, so every page filters it:

1. A campaign message carries the signed unsubscribe token of its tenant in `List-Unsubscribe`
   (`<.../t/u/TOKEN>`, campaigns.tracking.tokens). When the token verifies, its tenant id
   decides, whatever the sender says: it cannot be forged without SECRET_KEY.
2. Anything else belongs to the tenant when its envelope sender (or From, when the envelope
   sender is empty) is at one of the tenant's sending domains that has passed verification
   (DNS proved it theirs), not at a domain merely added, which any tenant could type.
3. The rest (the platform's own mail, unknown senders) is on no tenant's page.

The core imports no app, so the two answers are registered at start-up by the apps that own them
(AppConfig.ready): campaigns verifies its unsubscribe token (`register_token_verifier`),
deliverability lists the verified sending domains of the active schema
(`register_verified_domains`). Unregistered, no message belongs to any tenant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr

from penguinmails.sandbox.store import CapturedMessage

_UNSUBSCRIBE_TOKEN = re.compile(r"/t/u/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")
# Captured mail is read long after it was sent; a token's own expiry does not matter here.
_ANY_AGE_DAYS = 100 * 365

# (token, max_age_days) -> the tenant id of a valid unsubscribe token, None for a bad one.
TokenVerifier = Callable[[str, int], "int | None"]
# () -> the verified sending domain names of the schema that is active.
VerifiedDomains = Callable[[], Iterable[str]]

_token_verifier: TokenVerifier | None = None
_verified_domains: VerifiedDomains | None = None


def register_token_verifier(verifier: TokenVerifier) -> None:
    global _token_verifier
    _token_verifier = verifier


def register_verified_domains(provider: VerifiedDomains) -> None:
    global _verified_domains
    _verified_domains = provider


def token_tenant(message: CapturedMessage) -> int | None:
    """The tenant id of the message's verified unsubscribe token; None without one."""
    match = _UNSUBSCRIBE_TOKEN.search(message.header("List-Unsubscribe"))
    if match is None or _token_verifier is None:
        return None
    return _token_verifier(match[1], _ANY_AGE_DAYS)


def sender_of(message: CapturedMessage) -> str:
    address = message.envelope_from or parseaddr(message.from_header)[1]
    return address.strip().lower()


@dataclass(frozen=True)
class TenantScope:
    """A predicate over captured messages: those of one tenant."""

    tenant_id: int
    domains: frozenset[str]

    @classmethod
    def current(cls, tenant_id: int) -> TenantScope:
        """The scope of the tenant whose schema is active (the request's tenant)."""
        names = _verified_domains() if _verified_domains is not None else ()
        return cls(tenant_id=tenant_id, domains=frozenset(n.lower() for n in names))

    def __call__(self, message: CapturedMessage) -> bool:
        owner = token_tenant(message)
        if owner is not None:
            return owner == self.tenant_id
        sender = sender_of(message)
        if not sender:
            return False
        return sender.rpartition("@")[2] in self.domains
