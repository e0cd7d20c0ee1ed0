"""Password hashing (argon2id) and the strength rule."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
# Long enough for any passphrase; refusing more keeps hashing cost bounded.
MAX_PASSWORD_LENGTH = 256
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password12", "password123", "password1234", "1234567890",
        "12345678910", "qwertyuiop", "qwerty1234", "qwerty12345", "iloveyou12", "letmein123",
        "welcome123", "abc1234567", "aaaaaaaaaa", "0123456789", "1q2w3e4r5t", "football12",
        "baseball12", "sunshine12", "princess12", "superman12", "trustno1234", "changeme123",
    }
)  # fmt: skip

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A real hash to verify against when the account does not exist, so timing matches.
_DUMMY_HASH = _hasher.hash("attune-timing-equaliser")


def hash_password(password: str) -> str:
    """The argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same effort when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, email: str = "", name: str = "") -> str | None:
    """Why `password` is too weak, in words a person understands, or None when it is fine."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "That password is too easy to guess. Try a few unrelated words."
    local_part = email.split("@", 1)[0].lower()
    if (len(local_part) >= 4 and local_part in lowered) or (name and lowered == name.lower()):
        return "Don't use your name or e-mail address in your password."
    return None
