"""The gateway's Prometheus metrics, served on FIELDLINE_GATEWAY_METRICS_PORT at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_IN = Counter(
    "fieldline_gateway_messages_total", "MQTT messages received, by topic kind", ["kind"]
)
REJECTED = Counter(
    "fieldline_gateway_rejected_total",
    "Messages dead-lettered and fixes quarantined, by reason",
    ["reason"],
)
STORED = Counter("fieldline_gateway_rows_total", "Rows written, by table", ["table"])
BATCH_SIZE = Histogram(
    "fieldline_gateway_batch_messages",
    "Messages per committed batch",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000),
)
COMMIT_SECONDS = Histogram("fieldline_gateway_commit_seconds", "Time to write and commit one batch")
LAG_SECONDS = Histogram(
    "fieldline_gateway_lag_seconds",
    "Consumer lag: from the arrival of a batch's oldest message to its commit",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PENDING = Gauge(
    "fieldline_gateway_unacknowledged_messages",
    "Messages received and not yet acknowledged (consumer lag)",
)
HANDLER_FAILURES = Counter(
    "fieldline_gateway_handler_failures_total", "Unexpected failures, by handler", ["handler"]
)
STORAGE_RETRIES = Counter(
    "fieldline_gateway_storage_retries_total", "Batches retried after a database error"
)
SPARKPLUG_REBIRTHS = Counter(
    "fieldline_gateway_sparkplug_rebirth_requests_total",
    "Rebirth commands (NCMD) sent to Sparkplug edge nodes, by why",
    ["reason"],
)
SPARKPLUG_SKIPPED = Counter(
    "fieldline_gateway_sparkplug_skipped_metrics_total",
    "Sparkplug metric values left out (not numeric, out of sync, ...), by reason",
    ["reason"],
)
