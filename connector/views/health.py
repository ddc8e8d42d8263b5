"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from teams_proactive.connector.views.common import runtime

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    """Readiness: the store answers too."""
    try:
        runtime().call(runtime().store.ping(), timeout=5)
    except Exception as exc:  # any failure means "not ready"; the reason is in the answer
        return jsonify({"status": "unavailable", "store": type(exc).__name__}), 503
    dispatcher = runtime().dispatcher
    return jsonify({"status": "ready", "store": "ok", "dispatcherLeader": dispatcher.is_leader})
