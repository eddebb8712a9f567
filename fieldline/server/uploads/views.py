"""`/api/v1/uploads/{uuid}`: the crews' photos, put once under a device-made id and served
as immutable files."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from fieldline.server.auth import current_principal, requires
from fieldline.server.resources import db, resources
from fieldline.server.uploads import payloads, services
from fieldline.server.uploads.params import image_body

blueprint = Blueprint("uploads", __name__)
# An upload id names the same bytes for ever: caches may keep them, each user's own.
CACHE_CONTROL = "private, max-age=31536000, immutable"


@blueprint.put("/<upload_id>")
@requires("uploads:write")
def put(upload_id: str) -> Any:
    upload = services.upload_id(upload_id)
    data, content_type = image_body(request, resources().settings.photo_max_bytes)
    principal = current_principal()
    actor = principal.crew_id or principal.name
    stored = services.store(db(), upload, data, content_type, actor)
    db().commit()
    # 200 whether this request stored it or an earlier try did: a retry cannot tell apart.
    return payloads.upload_json(stored.upload), 200, {"Location": payloads.upload_url(upload)}


@blueprint.get("/<upload_id>")
@requires("uploads:read")
def show(upload_id: str) -> Any:
    upload = services.get_upload(db(), services.upload_id(upload_id))
    response = Response(upload.data, mimetype=upload.content_type)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(upload.sha256)
    return response.make_conditional(request)
