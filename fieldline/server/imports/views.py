"""`/api/v1/imports`: a file uploaded and imported as `fieldline import` would import it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, request
from werkzeug.utils import secure_filename

from fieldline.gis.crs import parse_crs
from fieldline.gis.errors import GisError, InvalidField
from fieldline.gis.importer import check_mapping, find_sources, import_source
from fieldline.gis.mapping import parse_mapping
from fieldline.server.auth import requires
from fieldline.server.errors import Unprocessable
from fieldline.server.resources import db, resources

blueprint = Blueprint("imports", __name__)


@blueprint.post("")
@requires("assets:write")
def upload() -> Any:
    # Uploads may be larger than other bodies; Flask checks this when the form is parsed.
    request.max_content_length = resources().settings.max_upload_bytes
    upload = request.files.get("file")
    name = secure_filename(upload.filename or "") if upload else ""
    if upload is None or not name:
        raise Unprocessable("send the file to import as multipart form field `file`", "file")
    form = request.form
    mapping = parse_mapping(
        form.getlist("map"), form.getlist("map_values"), form.get("id_field") or None
    )
    crs = parse_crs(form["crs"], "crs") if form.get("crs") else None
    session = db()
    with tempfile.TemporaryDirectory(prefix="fieldline-import-") as folder:
        path = Path(folder) / name
        upload.save(path)
        try:
            sources = find_sources(
                path, form.get("layer") or None, form.get("format") or None, form.get("namespace")
            )
            check_mapping(sources, mapping)
            summaries = [import_source(session, source, crs, mapping=mapping) for source in sources]
        except InvalidField:
            raise
        except GisError as exc:
            raise Unprocessable(exc.detail, "file") from None
    if not any(summary.read for summary in summaries):
        raise Unprocessable(f"no features could be read from {name}", "file")
    return {
        "file": name,
        "read": sum(s.read for s in summaries),
        "inserted": sum(s.inserted for s in summaries),
        "updated": sum(s.updated for s in summaries),
        "rejected": sum(len(s.rejected) for s in summaries),
        "layers": [summary.as_dict() for summary in summaries],
    }
