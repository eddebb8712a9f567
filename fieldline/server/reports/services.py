"""Field reports: finding them, the live event of a new one, and the supervisor's review.

Accepting an `attribute_correction` applies its `changes` to the asset it names through the
asset registry's audited edit (gis/services.py `update_asset`), every value checked before
anything is written; a bad one is an InvalidField naming `changes.<attribute>`, and the
report stays pending. A report is reviewed once: a second review is a Conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.layers import LAYERS, Layer
from fieldline.gis.services import update_asset
from fieldline.gis.validation import parse_properties
from fieldline.server.fields import iso, text
from fieldline.server.reports.models import CORRECTION, FieldReportRow
from fieldline.server.uploads.services import existing_ids

MAX_REASON_LENGTH = 2000
EDIT_SOURCE = "field_report"


@dataclass
class ReportQuery:
    crew_id: str | None = None
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    limit: int = 100


def list_reports(session: Session, query: ReportQuery) -> list[FieldReportRow]:
    """The reports that match, the latest received first."""
    select = sa.select(FieldReportRow)
    if query.crew_id is not None:
        select = select.where(FieldReportRow.crew_id == query.crew_id)
    if query.kinds:
        select = select.where(FieldReportRow.kind.in_(query.kinds))
    if query.statuses:
        select = select.where(FieldReportRow.review_status.in_(query.statuses))
    select = select.order_by(
        FieldReportRow.received_at.desc(), FieldReportRow.public_id.desc()
    ).limit(query.limit)
    return list(session.scalars(select))


def get_report(session: Session, public_id: str, *, for_update: bool = False) -> FieldReportRow:
    select = sa.select(FieldReportRow).where(FieldReportRow.public_id == public_id)
    if for_update:
        # Two supervisors reviewing at once: the second waits, then sees the first's review.
        select = select.with_for_update()
    found = session.scalar(select)
    if found is None:
        raise NotFound(f"no field report {public_id}")
    return found


def missing_photos(session: Session, reports: list[FieldReportRow]) -> dict[str, list[str]]:
    """Per report, the photo ids it lists that were never uploaded (yet: the device sends the
    report and its photos independently, and an offline one may still be sending)."""
    listed = [photo for report in reports for photo in report.photos]
    stored = existing_ids(session, listed)
    return {r.public_id: [p for p in r.photos if p not in stored] for r in reports}


def report_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """A report as the live stream shows it (`type` "report"), new or reviewed: from a row
    or the gateway's fields of the same names."""
    return {
        "type": "report",
        "id": row["public_id"],
        "crew_id": row["crew_id"],
        "kind": row["kind"],
        "ts": iso(row["ts"]),
        "lat": row["lat"],
        "lon": row["lon"],
        "asset_id": row.get("asset_id"),
        "note": row.get("note"),
        "photos": list(row.get("photos") or ()),
        "status": row.get("review_status") or "pending",
        "received_at": iso(row.get("received_at")),
    }


def row_event(report: FieldReportRow) -> dict[str, Any]:
    return report_event({column: getattr(report, column) for column in EVENT_COLUMNS})


EVENT_COLUMNS = (
    "public_id",
    "crew_id",
    "kind",
    "ts",
    "lat",
    "lon",
    "asset_id",
    "note",
    "photos",
    "review_status",
    "received_at",
)


# --- the review ---------------------------------------------------------------------------


def _pending(report: FieldReportRow) -> None:
    if report.review_status != "pending":
        by = f" by {report.reviewed_by}" if report.reviewed_by else ""
        raise Conflict(f"{report.public_id} was {report.review_status}{by} already")


def asset_layer(asset_id: str) -> Layer:
    """The layer whose public ids start like `asset_id` (`P-000001`: pipes)."""
    prefix = asset_id.rpartition("-")[0]
    for layer in LAYERS.values():
        if layer.network and layer.model.id_prefix == prefix:
            return layer
    raise InvalidField("asset_id", f"{asset_id!r} names no asset of the network")


def _as_change(exc: InvalidField) -> InvalidField:
    """The asset registry names `properties.<attribute>`; the report calls them `changes`."""
    name = exc.field.removeprefix("properties")
    return InvalidField(f"changes{name}" if name != exc.field else exc.field, exc.detail)


def apply_correction(session: Session, report: FieldReportRow, actor: str) -> list[str]:
    """Apply a correction's `changes` to its asset through the audited edit; returns the
    attributes that changed. InvalidField names the report's field at fault (`asset_id`,
    `changes`, `changes.<attribute>`); nothing is written then."""
    if not report.asset_id:
        raise InvalidField("asset_id", "an attribute correction names the asset it corrects")
    layer = asset_layer(report.asset_id)
    if not report.changes:
        raise InvalidField("changes", "the correction changes no attribute")
    try:
        values = parse_properties(layer, report.changes, partial=True)
        return update_asset(
            session, layer, report.asset_id, None, values, actor, source=EDIT_SOURCE
        )
    except InvalidField as exc:
        raise _as_change(exc) from None
    except NotFound:
        raise InvalidField("asset_id", f"{report.asset_id} no longer exists") from None


def accept(session: Session, public_id: str, actor: str, now: datetime) -> FieldReportRow:
    """Accept a pending report; a correction is applied to its asset in the same
    transaction (nothing is written when a value is refused)."""
    report = get_report(session, public_id, for_update=True)
    _pending(report)
    if report.kind == CORRECTION:
        report.applied_fields = apply_correction(session, report, actor)
    report.review_status = "accepted"
    report.reviewed_by = actor
    report.reviewed_at = now
    session.flush()
    return report


def reject(
    session: Session, public_id: str, actor: str, reason: Any, now: datetime
) -> FieldReportRow:
    """Reject a pending report, saying why (the crew and the audit read it)."""
    why = text(reason, "reason", MAX_REASON_LENGTH)
    report = get_report(session, public_id, for_update=True)
    _pending(report)
    report.review_status = "rejected"
    report.reviewed_by = actor
    report.reviewed_at = now
    report.review_reason = why
    session.flush()
    return report
