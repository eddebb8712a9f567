"""The body of a photo upload: raw image bytes, at most FIELDLINE_PHOTO_MAX_BYTES, of a type
its magic bytes confirm."""

from __future__ import annotations

from flask import Request

from fieldline.server.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from fieldline.server.uploads.models import CONTENT_TYPES
from fieldline.server.uploads.services import sniff


def image_body(request: Request, max_bytes: int) -> tuple[bytes, str]:
    """The body and its content type; 415 for another type or bytes that are not that
    image, 413 past the limit (told from Content-Length before anything is read)."""
    declared = request.mimetype
    if declared not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"send the photo as {', '.join(CONTENT_TYPES)}, not {declared or 'no type'!r}",
            field="Content-Type",
        )
    too_large = f"the photo is larger than {max_bytes} bytes"
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(too_large, field="body", max_bytes=max_bytes)
    # The app-wide request limit is for JSON bodies; a photo has its own.
    request.max_content_length = max_bytes
    data = request.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(too_large, field="body", max_bytes=max_bytes)
    if not data:
        raise Unprocessable("the body is empty", field="body")
    found = sniff(data)
    if found != declared:
        what = f"a {found} image" if found else "none of " + ", ".join(CONTENT_TYPES)
        raise UnsupportedMediaType(
            f"the body is not {declared}: its first bytes are {what}", field="body"
        )
    return data, declared
