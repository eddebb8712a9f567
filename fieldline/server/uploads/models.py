"""Photos the crews' handhelds upload, kept in PostgreSQL with the rest of the record.

The id is a UUID the device makes before it sends, so that a retried upload names the same
row: the same bytes again are a success, other bytes under that id a conflict.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base

# What a photo may be, told by its first bytes (the Content-Type header is only a claim).
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    content_type: Mapped[str] = mapped_column(sa.Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    uploaded_by: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    __table_args__ = (
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp')",
            name="content_type_choice",
        ),
    )
