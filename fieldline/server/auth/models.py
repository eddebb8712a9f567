"""People who sign in, the API tokens programs (and people) carry, the audit log of what
was done with them, and the server's own generated secrets.

A token's secret is never stored: only its SHA-256 (a random 32-byte secret needs no slow
KDF, unlike a password) and a short public prefix to find the row by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base, choice_check
from fieldline.roles import ROLES

_TS = sa.DateTime(timezone=True)

# What the audit log records; other parts record their own kinds through record_event.
EVENT_KINDS = (
    "login",
    "login_failed",
    "logout",
    "token_created",
    "token_revoked",
    "user_created",
    "user_changed",
    "password_changed",
    "device_credentials_created",
    "device_revoked",
    "override",
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        choice_check("role", ROLES),
        # A crew member acts for one crew: its tasks, its handheld.
        sa.CheckConstraint("role <> 'crew_member' OR crew_id IS NOT NULL", name="crew_member_crew"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(sa.Text, unique=True)
    role: Mapped[str] = mapped_column(sa.Text)
    crew_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="RESTRICT"), index=True
    )
    password_hash: Mapped[str] = mapped_column(sa.Text)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=sa.func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(_TS)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.Text)
    prefix: Mapped[str] = mapped_column(sa.Text, unique=True)
    secret_sha256: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)
    last_used_at: Mapped[datetime | None] = mapped_column(_TS)


class SecurityEvent(Base):
    __tablename__ = "security_events"
    __table_args__ = (sa.Index("ix_security_events_kind_at", "kind", "at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(_TS, server_default=sa.func.now(), index=True)
    kind: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str | None] = mapped_column(sa.Text, index=True)
    subject: Mapped[str | None] = mapped_column(sa.Text, index=True)
    remote_addr: Mapped[str | None] = mapped_column(sa.Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))


class ServerSecret(Base):
    """Secrets the server makes for itself once (the session cookie's signing key), kept
    where every web process finds the same one."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=sa.func.now())
