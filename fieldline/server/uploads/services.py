"""Storing and reading the crews' photos; an upload id names one set of bytes for ever."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.server.uploads.models import Upload

# The first bytes of each accepted format. Three fixed signatures need no library; the
# Content-Type a device sends is only checked against them.
SIGNATURES = {
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/webp": ((0, b"RIFF"), (8, b"WEBP")),
}


def sniff(data: bytes) -> str | None:
    """The image type the bytes start like, or None."""
    for content_type, parts in SIGNATURES.items():
        if all(data[at : at + len(magic)] == magic for at, magic in parts):
            return content_type
    return None


def upload_id(value: str, field: str = "upload_id") -> uuid.UUID:
    """A device-made UUID, in any of the usual spellings."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidField(field, f"{str(value)[:60]!r} is not a UUID") from None


@dataclass(frozen=True)
class Stored:
    upload: Upload
    created: bool


def store(
    session: Session, upload: uuid.UUID, data: bytes, content_type: str, actor: str
) -> Stored:
    """Keep the bytes under the id. The same bytes again (a retry) are the same upload;
    other bytes under a taken id are a Conflict."""
    digest = hashlib.sha256(data).hexdigest()
    inserted = session.execute(
        insert(Upload)
        .values(
            id=upload,
            content_type=content_type,
            size_bytes=len(data),
            sha256=digest,
            data=data,
            uploaded_by=actor,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(Upload.id)
    ).first()
    found = get_upload(session, upload)
    if inserted is None and found.sha256 != digest:
        raise Conflict(
            f"upload {upload} holds other bytes (sha256 {found.sha256}); a new photo needs a new id"
        )
    return Stored(found, created=inserted is not None)


def get_upload(session: Session, upload: uuid.UUID) -> Upload:
    found = session.get(Upload, upload)
    if found is None:
        raise NotFound(f"no upload {upload}")
    return found


def existing_ids(session: Session, ids: Iterable[str]) -> set[str]:
    """Which of the given ids (as a report lists them) name a stored upload, as given."""
    parsed: dict[uuid.UUID, list[str]] = {}
    for raw in ids:
        try:
            parsed.setdefault(uuid.UUID(raw), []).append(raw)
        except ValueError:
            continue  # not a UUID: never uploaded
    if not parsed:
        return set()
    found = session.scalars(sa.select(Upload.id).where(Upload.id.in_(list(parsed))))
    return {raw for upload in found for raw in parsed[upload]}
