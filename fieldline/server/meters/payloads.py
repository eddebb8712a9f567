"""Meter findings as JSON: the meter and where it is, what was found, the days with their
consumption and baseline, and why in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fieldline.server.fields import iso
from fieldline.server.meters.findings import DayFigure, Finding
from fieldline.server.meters.services import MeterPlace


def day_json(figure: DayFigure) -> dict[str, Any]:
    body: dict[str, Any] = {
        "day": figure.day.isoformat(),
        "consumption_m3": figure.consumption_m3,
        "baseline_median_m3": figure.baseline_median_m3,
        "baseline_spread_m3": figure.baseline_spread_m3,
        "z": figure.z,
    }
    if figure.night_least_lph is not None:
        body["night_least_lph"] = figure.night_least_lph
    return body


def finding_json(finding: Finding, place: MeterPlace | None) -> dict[str, Any]:
    return {
        "meter_id": finding.meter_id,
        "serial": None if place is None else place.serial,
        "customer_account": None if place is None else place.customer_account,
        "service_address": None if place is None else place.service_address,
        "lon": None if place is None else place.lon,
        "lat": None if place is None else place.lat,
        "kind": finding.kind,
        "score": round(finding.score, 3),
        "why": finding.why,
        "days": [day_json(figure) for figure in finding.days],
        "last_reading_at": iso(finding.last_reading_at),
    }


def findings_json(
    findings: list[Finding], places: Mapping[str, MeterPlace]
) -> list[dict[str, Any]]:
    return [finding_json(finding, places.get(finding.meter_id)) for finding in findings]
