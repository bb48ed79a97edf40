"""Standard Webhooks signatures (https://www.standardwebhooks.com): headers `webhook-id`,
`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
keyed by the endpoint's `whsec_<base64>` secret. The signing itself is the `standardwebhooks`
package's, so our consumers can verify with any Standard Webhooks library."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def generate_secret() -> str:
    """A new endpoint secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secrets_: Sequence[str], *, event_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The headers of one attempt: `timestamp` is the send time (Unix seconds), so a consumer's
    replay window (5 minutes in the libraries) is measured from this attempt, not the event.
    One `v1,` signature per secret, space-separated (the current one, and the previous one
    while a rotation's grace period runs): a receiver holding either verifies."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    signatures = [Webhook(s).sign(msg_id=event_id, timestamp=when, data=body) for s in secrets_]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "PenguinMails-Webhooks/1",
    }
