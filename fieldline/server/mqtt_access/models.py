"""The MQTT logins Fieldline has issued: which device, station or edge node each is for, and
when it was revoked. The passwords live only in the broker (as its hashes) and are shown once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base

_TS = sa.DateTime(timezone=True)


class DeviceCredential(Base):
    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # device: a crew's handheld or OwnTracks phone; station: a SCADA station's own JSON;
    # edge: a Sparkplug B edge node (subject "group/edge").
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The device's binding while it lasts; the row stays as the record once it is revoked.
    device_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        sa.CheckConstraint("kind IN ('device', 'station', 'edge')", name="kind_choice"),
        # One live login per name; revoked ones are history.
        sa.Index(
            "uq_device_credentials_live_username",
            "username",
            unique=True,
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )
