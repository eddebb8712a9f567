"""Field reports as the supervisors review them.

The table is the gateway's `field_reports` (server/telemetry/models.py, one mapping per
table); its key (crew, time, kind) is the device's and makes a redelivery write nothing, its
`public_id` (`FR-000001`) is how the API and the live stream name a report.
"""

from __future__ import annotations

from fieldline.server.telemetry.models import FieldReportRow

# What a crew may report (the gateway's decoder takes these and no other).
REPORT_KINDS = ("leak", "damage", "attribute_correction", "other")
REVIEW_STATUSES = ("pending", "accepted", "rejected")
# The kind whose acceptance edits the asset it names with its `changes`.
CORRECTION = "attribute_correction"

__all__ = ["CORRECTION", "REPORT_KINDS", "REVIEW_STATUSES", "FieldReportRow"]
