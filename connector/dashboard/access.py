"""Who is looking at the dashboard: its blueprint, the session it keeps, and the ``signed_in`` guard every page uses.

Kept apart from the pages (``connector.dashboard`` and ``connector.dashboard.campaign``) so that both
import it, and neither the other.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from teams_proactive.connector.auth import API_KEY_HEADER, current_caller
from teams_proactive.connector.dashboard import data
from teams_proactive.connector.extension import runtime_of

# Named after the package, as before: its templates/ folder is found from there.
blp = Blueprint(
    "dashboard", "teams_proactive.connector.dashboard", url_prefix="/dashboard", template_folder="templates"
)

SESSION_KEY = "dashboard"
SESSION_HOURS = 8
# Bootstrap sign-ins live in the store's lease table (shared by workers and instances): one lease
# per session id, owned by a slow hash of the CONNECTOR_API_KEY it was opened with.
SESSION_LEASE_PREFIX = "dashboard-session:"


class DashboardState:
    """Per-process caches: the last overview per tenant scope, failed sign-ins per client address."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.overviews: dict[tuple[str | None, int], tuple[float, data.Overview]] = {}
        self.bootstrap_generation: str | None = None


def dashboard_state() -> DashboardState:
    return current_app.extensions["teams_proactive.dashboard"]


@dataclass(frozen=True, slots=True)
class Viewer:
    name: str
    tenant_id: str | None


# ---- who is looking ---------------------------------------------------------------------------
def current_viewer() -> Viewer | None:
    if request.headers.get(API_KEY_HEADER) or request.headers.get("Authorization"):
        caller = current_caller("admin")  # raises the API's JSON 401/403
        return Viewer(caller.name, caller.tenant_id)
    signed = session.get(SESSION_KEY)
    if not isinstance(signed, dict):
        return None
    runtime = runtime_of(current_app)
    if signed.get("kind") == "bootstrap":
        generation = dashboard_state().bootstrap_generation
        session_id = signed.get("sid")
        if not generation or not isinstance(session_id, str) or not session_id:
            return None
        # Renews the session's lease; refused when it was opened with another CONNECTOR_API_KEY or signed
        # out. Asked twice: two pages of one session renewing at once may lose an ETag race (Cosmos).
        name = SESSION_LEASE_PREFIX + session_id
        for _ in range(2):
            if runtime.call(runtime.store.leases.acquire(name, generation, SESSION_HOURS * 3600)):
                return Viewer("bootstrap", None)
        return None
    record = runtime.call(runtime.store.keys.get(str(signed.get("id", ""))))
    if record is None or record.revoked_at is not None or "admin" not in record.scopes:
        return None
    return Viewer(record.name, record.tenant_id)


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for signed-in viewers only (called with the ``Viewer``); others go to the sign-in form."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        viewer = current_viewer()
        if viewer is None:
            session.pop(SESSION_KEY, None)
            return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
        return view(viewer, *args, **kwargs)

    return wrapper
