"""Argon2id hashes: what is stored, what verifies, and re-hashing when parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.auth import passwords
from tests.server.auth.conftest import PASSWORD, MakeUser


def test_a_hash_is_argon2id_and_verifies_only_the_password() -> None:
    stored = passwords.hash_password("a long passphrase")
    assert stored.startswith("$argon2id$")
    assert "a long passphrase" not in stored
    assert passwords.verify_password(stored, "a long passphrase")
    assert not passwords.verify_password(stored, "a long passphrase ")
    assert not passwords.verify_password("not a hash", "a long passphrase")
    assert passwords.hash_password("same") != passwords.hash_password("same")  # salted


def test_a_weaker_old_hash_is_made_again_at_sign_in(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    user = make_user("rehash-me", "viewer")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.flush()
    assert passwords.needs_rehash(weak)
    response = client.post(
        "/api/v1/auth/login", json={"username": "rehash-me", "password": PASSWORD}
    )
    assert response.status_code == 200
    session.refresh(user)
    assert user.password_hash != weak
    assert not passwords.needs_rehash(user.password_hash)
    assert passwords.verify_password(user.password_hash, PASSWORD)
