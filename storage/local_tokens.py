"""Signed, expiring tokens that stand in for S3 presigned URLs on the local backend."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from storage.base import InvalidToken

# Bound what an unauthenticated request can make us decode; a 1024-byte key plus a long
# filename stays far below this.
MAX_TOKEN_CHARS = 8192
# Domain separation: a MAC made for anything else with the same secret never verifies here.
_MAC_CONTEXT = "attune-local-storage-token-v1"


class TokenAction(StrEnum):
    """What a token allows: fetching one object, or sending one object or part."""

    DOWNLOAD = "download"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token. Upload tokens name an upload id (and, for a multipart
    part, its number); the key and content type come from the server's upload record."""

    action: TokenAction
    key: str
    expires_at: int
    upload_id: str | None = None
    part_number: int | None = None
    filename: str | None = None
    content_type: str | None = None

    @property
    def is_part(self) -> bool:
        """True when the token is for one part of a multipart upload."""
        return self.upload_id is not None and self.part_number is not None


class TokenSigner:
    """Makes and checks HMAC-SHA256 tokens over (action, key, upload, part, expiry, filename)."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret
        self._clock = clock

    def expiry(self, expires_in: int) -> int:
        """Return the epoch second at which a token made now for expires_in seconds lapses."""
        # Counted from the start of the current second, as S3 counts from X-Amz-Date.
        return int(self._clock()) + expires_in

    def sign(self, claims: TokenClaims) -> str:
        """Return the URL-safe token for claims."""
        # Upload tokens leave the key and content type out: the upload id binds them on the
        # server, so the URL shows no key text (user, dataset or item ids) at all.
        named_upload = claims.upload_id is not None
        payload = json.dumps(
            [
                claims.action.value,
                None if named_upload else claims.key,
                claims.upload_id,
                claims.part_number,
                claims.expires_at,
                claims.filename,
                None if named_upload else claims.content_type,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        return f"{_b64encode(payload)}.{_b64encode(self._mac(claims))}"

    def verify(
        self,
        token: str,
        expected_action: TokenAction | str,
        target_of_upload: Callable[[str, bool], tuple[str, str | None] | None],
    ) -> TokenClaims:
        """Return a genuine, unexpired token's claims for expected_action; else InvalidToken.

        target_of_upload(upload_id, is_part) gives the (key, content type) the server's record
        of the upload holds, or None once the upload has ended.
        """
        claims = _parse(token, target_of_upload)
        signature = _b64decode(token.rpartition(".")[2])
        if not hmac.compare_digest(signature, self._mac(claims)):
            raise InvalidToken("token signature does not match")
        if claims.action != TokenAction(expected_action):
            raise InvalidToken(f"token is for {claims.action}, not {expected_action}")
        if self._clock() >= claims.expires_at:
            raise InvalidToken("token has expired")
        return claims

    def _mac(self, claims: TokenClaims) -> bytes:
        message = json.dumps(
            [
                _MAC_CONTEXT,
                claims.action.value,
                claims.key,
                claims.upload_id,
                claims.part_number,
                claims.expires_at,
                claims.filename,
                claims.content_type,
            ],
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        return hmac.new(self._secret, message, hashlib.sha256).digest()


def _parse(
    token: str, target_of_upload: Callable[[str, bool], tuple[str, str | None] | None]
) -> TokenClaims:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidToken("malformed token")
    try:
        fields = json.loads(_b64decode(token.partition(".")[0]).decode("utf-8"))
        action, key, upload_id, part_number, expires_at, filename, content_type = fields
        action = TokenAction(action)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(expires_at, int) or not _all_optional(str, key, upload_id, filename):
        raise InvalidToken("malformed token")
    if not _all_optional(str, content_type) or not _all_optional(int, part_number):
        raise InvalidToken("malformed token")
    if action is TokenAction.UPLOAD and upload_id is None:
        # Upload tokens made before upload records named their key; they are not honoured.
        raise InvalidToken("malformed token")
    if upload_id is not None:
        target = target_of_upload(upload_id, part_number is not None)
        if target is None:
            raise InvalidToken("the upload this link was made for has ended")
        key, recorded_type = target
        content_type = recorded_type if part_number is None else None
    if key is None:
        raise InvalidToken("token names no object")
    return TokenClaims(action, key, expires_at, upload_id, part_number, filename, content_type)


def _all_optional(kind: type, *values: object) -> bool:
    return all(
        value is None or (isinstance(value, kind) and not isinstance(value, bool))
        for value in values
    )


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    # The decoder skips stray characters and ignores the last character's spare bits; insist on
    # the one canonical spelling so an altered token never verifies.
    if _b64encode(raw) != text:
        raise InvalidToken("malformed token")
    return raw
