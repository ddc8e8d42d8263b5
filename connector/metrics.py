"""Prometheus metrics at /metrics: deliveries by status, failures by code, retries, 429s, send latency
(counted by the dispatcher, bot/delivery/metrics.py), plus the outbox queue depth and the records in
quarantine, read from the store.

Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder: the counters of every worker are
then added up, whichever worker answers the scrape. Set ``METRICS_TOKEN`` to require
``Authorization: Bearer <token>`` (the endpoint is public otherwise; it shows counts, never people).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import teams_proactive.bot.delivery.metrics  # noqa: F401 - registers the delivery counters before the first scrape
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from teams_proactive.bot.model import DeliveryStatus
from teams_proactive.bot.runtime import BotRuntime
from teams_proactive.bot.store.base import QUARANTINE_KINDS
from teams_proactive.connector.extension import runtime_of

log = logging.getLogger(__name__)

EXTENSION = "teams_proactive.metrics"
QUEUE_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING)
PAGE = 1000
# The classic text format every Prometheus version reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_COUNTED = 200_000  # per status: past this the gauge says "at least"; the outbox is far smaller in practice

blp = Blueprint("metrics", __name__)


class RuntimeCollector(Collector):
    """Numbers read at scrape time: the outbox by status (store-wide) and this process's dispatcher."""

    def __init__(self, runtime: BotRuntime, *, cache_seconds: float = 5.0) -> None:
        self._runtime = runtime
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, StoreCounts | None] = (0.0, None)

    def collect(self) -> Iterator[Metric]:
        counts = self._store_counts()
        depth = counts.queue if counts is not None else None
        queue = GaugeMetricFamily(
            "teams_proactive_queue_depth",
            "Deliveries waiting in the outbox (all instances), by status.",
            labels=["status"],
        )
        for status in QUEUE_STATUSES:
            queue.add_metric([status.value], (depth or {}).get(status.value, 0))
        yield queue
        quarantined = GaugeMetricFamily(
            "teams_proactive_quarantined_records",
            "Records a loop could not read or process, moved aside and kept for the retention period"
            " (all instances), by kind: delivery, broadcast, notification, reference.",
            labels=["kind"],
        )
        for kind in QUARANTINE_KINDS:
            quarantined.add_metric([kind], (counts.quarantine if counts is not None else {}).get(kind, 0))
        yield quarantined
        yield GaugeMetricFamily(
            "teams_proactive_store_up",
            "1 when the store answered the last metrics query.",
            value=int(depth is not None),
        )
        yield GaugeMetricFamily(
            "teams_proactive_dispatcher_leader",
            "1 when this process holds the dispatcher lease (it is the one sending).",
            value=int(bool(getattr(self._runtime.dispatcher, "is_leader", False))),
        )

    def _store_counts(self) -> StoreCounts | None:
        # Scrapes can come often and from several Prometheus servers: count at most every few seconds.
        with self._lock:
            at, cached = self._cached
            if cached is not None and time.monotonic() - at < self._cache_seconds:
                return cached
            try:
                counts = self._runtime.call(_count(self._runtime), timeout=10)
            except Exception as exc:  # a scrape must still answer; store_up says what happened
                log.warning("metrics: the store did not answer the queue-depth query (%s)", type(exc).__name__)
                return None
            self._cached = (time.monotonic(), counts)
            return counts


@dataclass(frozen=True, slots=True)
class StoreCounts:
    queue: dict[str, int]  # outbox by status
    quarantine: dict[str, int]  # records in quarantine by kind


async def _count(runtime: BotRuntime) -> StoreCounts:
    return StoreCounts(await _count_pending(runtime), await runtime.store.quarantine.counts())


async def _count_pending(runtime: BotRuntime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in QUEUE_STATUSES:
        total, token = 0, None
        while total < MAX_COUNTED:
            page = await runtime.store.outbox.page(status=status.value, limit=PAGE, token=token)
            total += len(page.items)
            token = page.next_token
            if not token:
                break
        counts[status.value] = total
    return counts


def init_metrics(app: Flask, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    app.extensions[EXTENSION] = {
        "collector": RuntimeCollector(runtime_of(app)),
        "token": (env.get("METRICS_TOKEN") or "").strip(),
    }
    app.register_blueprint(blp)


def exposition(app: Flask) -> bytes:
    """The text exposition: process-wide (or all workers') counters, then this app's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
    else:
        shared = REGISTRY
    own = CollectorRegistry(auto_describe=False)
    own.register(app.extensions[EXTENSION]["collector"])
    return generate_latest(shared) + generate_latest(own)


@blp.get("/metrics")
def metrics() -> Response:
    token = current_app.extensions[EXTENSION]["token"]
    if token:
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return Response("metrics need Authorization: Bearer <METRICS_TOKEN>\n", 401, mimetype="text/plain")
    return Response(exposition(current_app), content_type=CONTENT_TYPE)
