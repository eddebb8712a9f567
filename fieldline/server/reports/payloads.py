"""Field reports as GeoJSON: a Feature at the reported point, its photos with their URLs
and the ids not uploaded (yet), and its review."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from fieldline.server.fields import iso
from fieldline.server.reports.models import FieldReportRow
from fieldline.server.reports.services import missing_photos
from fieldline.server.uploads.payloads import upload_url


def _feature(report: FieldReportRow, missing: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": report.public_id,
        "geometry": {"type": "Point", "coordinates": [report.lon, report.lat]},
        "properties": {
            "crew_id": report.crew_id,
            "kind": report.kind,
            "ts": iso(report.ts),
            "received_at": iso(report.received_at),
            "asset_id": report.asset_id,
            "note": report.note,
            "changes": report.changes,
            "photos": [
                {"id": photo, "url": None if photo in missing else upload_url(photo)}
                for photo in report.photos
            ],
            "missing_photos": list(missing),
            "status": report.review_status,
            "reviewed_by": report.reviewed_by,
            "reviewed_at": iso(report.reviewed_at),
            "reason": report.review_reason,
            "applied_fields": list(report.applied_fields),
        },
    }


def report_json(session: Session, report: FieldReportRow) -> dict[str, Any]:
    return _feature(report, missing_photos(session, [report])[report.public_id])


def feature_collection(session: Session, reports: list[FieldReportRow]) -> dict[str, Any]:
    missing = missing_photos(session, reports)
    return {
        "type": "FeatureCollection",
        "features": [_feature(report, missing[report.public_id]) for report in reports],
        "numberReturned": len(reports),
    }
