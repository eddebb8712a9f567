"""API tokens as the caller sees them: `fl_<prefix>_<secret>`.

The prefix finds the row; the secret is 32 random bytes, stored only as its SHA-256 (a random
secret of that size cannot be guessed, so a slow password KDF would add nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCHEME = "fl"
PREFIX_BYTES = 6
SECRET_BYTES = 32


@dataclass(frozen=True)
class TokenParts:
    prefix: str
    secret: str


def new_token() -> tuple[str, TokenParts]:
    """The full token to hand over once, and its parts."""
    # token_hex: no `_` in the parts, so the token splits back unambiguously.
    parts = TokenParts(secrets.token_hex(PREFIX_BYTES), secrets.token_hex(SECRET_BYTES))
    return f"{SCHEME}_{parts.prefix}_{parts.secret}", parts


def split_token(token: str) -> TokenParts | None:
    scheme, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != SCHEME or not prefix or not secret:
        return None
    return TokenParts(prefix, secret)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored_digest)
