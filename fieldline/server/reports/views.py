"""`/api/v1/reports`: the crews' field reports for supervisors, and their review. A review
goes out on the live stream after the commit, as a new report does from the gateway."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, Response, json, request

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import current_principal, requires
from fieldline.server.live.views import live
from fieldline.server.reports import payloads, services
from fieldline.server.reports.models import FieldReportRow
from fieldline.server.reports.params import parse_report_query, rejection_reason
from fieldline.server.resources import db, resources

log = logging.getLogger(__name__)
blueprint = Blueprint("reports", __name__)
GEOJSON = "application/geo+json"


def _geojson(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), mimetype=GEOJSON)


def _reviewed(report: FieldReportRow) -> Response:
    event = services.row_event(report)
    db().commit()
    try:
        live().publish(event)
    except redis.RedisError:  # the review is stored; the map catches up on its next load
        log.exception("the review of %s did not go out live", report.public_id)
    return _geojson(payloads.report_json(db(), report))


@blueprint.get("")
@requires("reports:read")
def index() -> Response:
    query = parse_report_query(request.args, resources().settings)
    reports = services.list_reports(db(), query)
    body = payloads.feature_collection(db(), reports)
    return _geojson(body | {"links": [{"rel": "self", "href": request.url}]})


@blueprint.get("/<report_id>")
@requires("reports:read")
def show(report_id: str) -> Response:
    return _geojson(payloads.report_json(db(), services.get_report(db(), report_id)))


@blueprint.post("/<report_id>/accept")
@requires("reports:review")
def accept(report_id: str) -> Response:
    report = services.accept(db(), report_id, current_principal().name, datetime.now(UTC))
    return _reviewed(report)


@blueprint.post("/<report_id>/reject")
@requires("reports:review")
def reject(report_id: str) -> Response:
    reason = rejection_reason(request_json(("application/json",)))
    report = services.reject(db(), report_id, current_principal().name, reason, datetime.now(UTC))
    return _reviewed(report)
