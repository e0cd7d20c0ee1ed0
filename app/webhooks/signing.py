"""Standard Webhooks signatures: secrets, message ids and the three webhook-* headers.

https://www.standardwebhooks.com: the signed content is "{id}.{timestamp}.{body}", signed
with HMAC-SHA256 under the secret's bytes (base64 after "whsec_"), sent as "v1,<base64>";
several signatures are separated by spaces (we send two while a rotated secret winds down).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MESSAGE_ID_PREFIX = "msg_"


def new_secret() -> str:
    """A fresh signing secret: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """A unique webhook-id; receivers use it to drop duplicates of a retried delivery."""
    return MESSAGE_ID_PREFIX + secrets.token_urlsafe(18)


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The "v1,<base64 HMAC-SHA256>" signature of one message under one secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    signing_secrets: list[str], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (one signature per secret)."""
    signatures = " ".join(sign(s, message_id, timestamp, body) for s in signing_secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
