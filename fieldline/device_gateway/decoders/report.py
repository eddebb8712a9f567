"""A field report from a handheld on `fieldline/crews/{crew_id}/reports`."""

from __future__ import annotations

from fieldline.device_gateway.decoders._fields import (
    parse_object,
    required_number,
    text,
    time_field,
    topic_part,
)
from fieldline.device_gateway.messages import DecodeError, FieldReport, Message
from fieldline.server.reports.models import REPORT_KINDS as KINDS


def decode(topic: str, payload: bytes) -> list[Message]:
    crew_id = topic_part(topic, 2, 4)
    obj = parse_object(payload)
    kind = text(obj, "kind", required=True)
    if kind not in KINDS:
        raise DecodeError("bad_kind", f"kind {str(kind)[:40]!r}")
    changes = obj.get("changes") or {}
    if not isinstance(changes, dict):
        raise DecodeError("bad_field", "changes is not an object")
    photos = obj.get("photos") or []
    if not isinstance(photos, list) or not all(isinstance(p, str) for p in photos):
        raise DecodeError("bad_field", "photos is not a list of upload ids")
    return [
        FieldReport(
            crew_id=crew_id,
            kind=kind,
            ts=time_field(obj, "ts"),
            lat=required_number(obj, "lat"),
            lon=required_number(obj, "lon"),
            asset_id=text(obj, "asset_id"),
            note=text(obj, "note"),
            changes=changes,
            photos=tuple(photos),
        )
    ]
