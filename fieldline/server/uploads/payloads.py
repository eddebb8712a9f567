"""Uploads as JSON."""

from __future__ import annotations

from typing import Any

from flask import url_for

from fieldline.server.uploads.models import Upload


def upload_url(upload_id: Any) -> str:
    return url_for("uploads.show", upload_id=str(upload_id))


def upload_json(upload: Upload) -> dict[str, Any]:
    return {
        "id": str(upload.id),
        "url": upload_url(upload.id),
        "content_type": upload.content_type,
        "bytes": upload.size_bytes,
        "sha256": upload.sha256,
    }
