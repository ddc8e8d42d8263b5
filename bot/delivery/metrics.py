"""Delivery and webhook-callback metrics as Prometheus client objects; the connector serves them at /metrics.

They live in the process-wide default registry so that gunicorn's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) can add up the workers: only the worker that holds the dispatcher
lease sends, and a scrape may reach any worker.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter("teams_proactive_deliveries", "Deliveries that reached a final status, by status.", ["status"])
FAILURES = Counter("teams_proactive_delivery_failures", "Failed deliveries, by error code.", ["code"])
RETRIES = Counter("teams_proactive_delivery_retries", "Send attempts that failed and will be retried.")
THROTTLED = Counter("teams_proactive_throttled", "Sends that Teams answered with 429 Too Many Requests.")
SEND_LATENCY = Histogram(
    "teams_proactive_send_latency_seconds",
    "Duration of one send call to the Bot Connector (any outcome).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

CALLBACKS = Counter(
    "teams_proactive_webhook_callbacks",
    "Webhook callbacks to flows, by outcome: delivered, retried, failed (refused or gave up), gone (410).",
    ["outcome"],
)

# Both statuses show from the first scrape (as 0), so rate() and alerts work before the first failure.
# The children are kept: looking a label up takes a lock and a dict, on every send.
DELIVERED = DELIVERIES.labels("delivered")
FAILED = DELIVERIES.labels("failed")
for _outcome in ("delivered", "retried", "failed", "gone"):
    CALLBACKS.labels(_outcome)

# Inbound work inside a bot turn that failed and was skipped so the turn could go on (the store down,
# a slow member lookup): by stage. The middleware inside another bot counts here too.
CAPTURE_FAILURES = Counter(
    "teams_proactive_capture_failures",
    "Inbound captures that failed and were skipped (the bot's turn went on), by stage: reference, inbound.",
    ["stage"],
)
for _stage in ("reference", "inbound", "store"):
    CAPTURE_FAILURES.labels(_stage)
