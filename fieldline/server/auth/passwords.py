"""Passwords, hashed with Argon2id (argon2-cffi's recommended parameters, RFC 9106).

A stored hash made with older parameters still verifies, and is made again with the current
ones at the next successful sign-in (`needs_rehash`).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 1024  # Argon2 takes any length; this bounds the work one request can ask for


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def generate_password() -> str:
    """A one-time password to hand over: 16 URL-safe characters, about 96 bits."""
    return secrets.token_urlsafe(12)


# A hash of a password nobody knows: a sign-in for an unknown user name verifies against it,
# so that the answer takes as long as for a known one.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def verify_nobody(password: str) -> None:
    verify_password(_DUMMY_HASH, password)
