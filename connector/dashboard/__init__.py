"""The operator dashboard at /dashboard: server-rendered pages, no JavaScript, behind an admin API key.

Sign-in takes an API key with the ``admin`` scope (or the bootstrap CONNECTOR_API_KEY) once and keeps a
signed, HttpOnly session cookie scoped to /dashboard. The cookie holds the key's id, or for the
bootstrap key a random session id recorded in the store; never the key nor anything computed from
it, so a copied cookie tells nothing about the key. Each request re-checks that the key still exists
and is not revoked (or that the bootstrap session was opened with today's CONNECTOR_API_KEY). Scripts
can skip the form and send ``X-API-Key`` instead (CSV export with curl). An admin key limited to one
tenant sees that tenant only. Wrong keys count against the client's address (connector.client_limits).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from teams_proactive.connector import keys
from teams_proactive.connector.client_limits import client_address, failure_limiter
from teams_proactive.connector.dashboard import campaign, data
from teams_proactive.connector.dashboard.access import (
    SESSION_HOURS,
    SESSION_KEY,
    SESSION_LEASE_PREFIX,
    DashboardState,
    Viewer,
    blp,
    dashboard_state,
    signed_in,
)
from teams_proactive.connector.dashboard.chart import DELIVERED_COLOUR, FAILED_COLOUR, hourly_chart
from teams_proactive.connector.extension import runtime_of
from teams_proactive.connector.settings import ConnectorSettings

log = logging.getLogger(__name__)

LOGIN_TOKEN_KEY = "login_token"
CACHE_SECONDS = 10.0
SIGNED_OUT = "signed-out"
STATUS_TEXT = {
    "uninstalled": "Uninstalled",
    "blocked": "Blocked the bot",
    "notFound": "Chat gone",
    "expired": "Expired",
    "optedOut": "Opted out (stop)",
}
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)


class _SessionInterface(SecureCookieSessionInterface):
    """The cookie is Secure whenever the dashboard is reached over https (directly, or behind App
    Service's TLS front end as PUBLIC_BASE_URL says), and may be plain on http://127.0.0.1 in development."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = app.config.get("DASHBOARD_COOKIE_SECURE")
        if configured is not None:
            return bool(configured)
        settings: ConnectorSettings = app.extensions["teams_proactive.connector_settings"]
        return request.is_secure or settings.public_base_url.startswith("https://")


def init_dashboard(app: Flask, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = session_secret(env)
    # Flask's defaults (a cookie for the whole site, 31 days, no SameSite) are set on purpose here: the
    # session exists only for these pages. DASHBOARD_COOKIE_SECURE None = decide per request (below).
    app.config.update(
        SESSION_COOKIE_NAME="teams_proactive_dashboard",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/dashboard",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.config.setdefault("DASHBOARD_COOKIE_SECURE", None)
    app.session_interface = _SessionInterface()
    state = DashboardState()
    bootstrap = (env.get("CONNECTOR_API_KEY") or "").strip()
    if bootstrap:
        state.bootstrap_generation = _generation(bootstrap)
    app.extensions["teams_proactive.dashboard"] = state
    app.register_blueprint(blp)


def session_secret(env: Mapping[str, str]) -> str:
    """SECRET_KEY when set; else derived from the bot's Entra client secret (long and random, shared by
    every worker); else random, which signs everyone out at each restart and works with one process
    only. Never from CONNECTOR_API_KEY: an operator may choose a short one, and a cookie signed with
    a key derived from it would let anyone holding the cookie test guesses offline."""
    explicit = (env.get("SECRET_KEY") or "").strip()
    if explicit:
        return explicit
    shared = (env.get("MicrosoftAppPassword") or "").strip()
    if shared:
        return hmac.new(shared.encode(), b"teams-proactive dashboard session", hashlib.sha256).hexdigest()
    log.warning(
        "SECRET_KEY is not set: dashboard sign-ins last only until this process restarts, and only work"
        " with a single worker"
    )
    return secrets.token_hex(32)


def _generation(bootstrap_key: str) -> str:
    # Kept in the store as the owner of bootstrap sessions: scrypt, so the store does not hand out a
    # cheap way to test guesses of a short CONNECTOR_API_KEY. Computed once per process.
    digest = hashlib.scrypt(bootstrap_key.encode(), salt=b"teams-proactive dashboard", n=2**14, r=8, p=1, dklen=32)
    return "bootstrap:" + digest.hex()


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not "no-referrer": with it a browser posts the sign-in form with "Origin: null", and the form's
    # origin check (login CSRF) could not tell our own page from any other. Other sites still get nothing.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# ---- sign-in ----------------------------------------------------------------------------------
def _form_token() -> str:
    """The sign-in form's one-time token, kept in the (SameSite=Lax) session cookie until it is used."""
    token = session.get(LOGIN_TOKEN_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[LOGIN_TOKEN_KEY] = token
    return token


def _cross_site() -> bool:
    """A form posted from another site (login CSRF: signing someone in as the attacker, so what they do
    next is seen by the attacker's key). Browsers say where a POST comes from in ``Origin`` (and
    ``Sec-Fetch-Site``); the form's token, from a cookie another site's form does not carry, is the
    second check for a browser that says neither."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is not None:
        settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
        own = {request.host_url.rstrip("/")}
        if settings.public_base_url:
            parts = urlsplit(settings.public_base_url)
            own.add(f"{parts.scheme}://{parts.netloc}")
        if origin.rstrip("/") not in own:
            return True
    expected = session.pop(LOGIN_TOKEN_KEY, None)
    presented = request.form.get("csrf_token") or ""
    return not (isinstance(expected, str) and expected and hmac.compare_digest(presented.encode(), expected.encode()))


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("dashboard/login.html", next=target, error=None, csrf_token=_form_token())
    if _cross_site():
        log.info("dashboard sign-in refused: the form was not posted from this dashboard's own page")
        return render_template(
            "dashboard/login.html",
            next=target,
            error="This sign-in did not come from this dashboard's own page. Open the dashboard and sign in here.",
            csrf_token=_form_token(),
        ), 403
    client = client_address()
    limiter = failure_limiter()
    if limiter.retry_after(client) is not None:
        return render_template(
            "dashboard/login.html",
            next=target,
            error="Too many wrong keys. Wait a minute and try again.",
            csrf_token=_form_token(),
        ), 429
    presented = (request.form.get("api_key") or "").strip()
    settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
    signed_in: dict[str, str] | None = None
    if (
        presented
        and settings.bootstrap_api_key
        and hmac.compare_digest(presented.encode(), settings.bootstrap_api_key.encode())
    ):
        generation = dashboard_state().bootstrap_generation or _generation(presented)
        session_id = secrets.token_urlsafe(24)
        runtime = runtime_of(current_app)
        runtime.call(runtime.store.leases.acquire(SESSION_LEASE_PREFIX + session_id, generation, SESSION_HOURS * 3600))
        signed_in = {"kind": "bootstrap", "sid": session_id}
    elif presented:
        runtime = runtime_of(current_app)
        record = runtime.call(keys.verify(runtime.store, presented))
        if record is not None and "admin" not in record.scopes:
            log.info("dashboard sign-in refused: key '%s' has no admin scope", record.name)
            return render_template(
                "dashboard/login.html",
                next=target,
                error=f"The key '{record.name}' works for the API but not here: the dashboard needs a key with"
                " the admin scope (teams-proactive keys create --name NAME --scopes admin).",
                csrf_token=_form_token(),
            ), 403
        if record is not None:
            signed_in = {"kind": "key", "id": record.id}
    if signed_in is None:
        limiter.record(client)
        return render_template(
            "dashboard/login.html",
            next=target,
            error="That API key is not valid (unknown, revoked or mistyped).",
            csrf_token=_form_token(),
        ), 401
    session.clear()
    session[SESSION_KEY] = signed_in
    session.permanent = True
    return redirect(target)


@blp.post("/logout")
def logout() -> Any:
    signed_in = session.get(SESSION_KEY)
    generation = dashboard_state().bootstrap_generation
    if isinstance(signed_in, dict) and isinstance(signed_in.get("sid"), str) and generation:
        # The cookie may have been copied: the session id itself must stop working, not just this cookie.
        name = SESSION_LEASE_PREFIX + signed_in["sid"]
        runtime = runtime_of(current_app)
        runtime.call(runtime.store.leases.release(name, generation))
        runtime.call(runtime.store.leases.acquire(name, SIGNED_OUT, SESSION_HOURS * 3600))
    session.clear()
    return redirect(url_for("dashboard.login"))


def _safe_next(target: str | None) -> str:
    # Only our own pages: never an absolute URL or a scheme-relative //host (open redirect).
    if target and target.startswith("/dashboard") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("dashboard.overview")


# ---- pages ------------------------------------------------------------------------------------
@blp.get("/")
@signed_in
def overview(viewer: Viewer) -> Any:
    hours = min(168, max(6, request.args.get("hours", 24, type=int) or 24))
    report = _overview(viewer.tenant_id, hours)
    return render_template(
        "dashboard/overview.html",
        viewer=viewer,
        o=report,
        hours=hours,
        chart=hourly_chart(report.hours),
        delivered_colour=DELIVERED_COLOUR,
        failed_colour=FAILED_COLOUR,
        statuses=STATUS_TEXT,
        utc=data.utc,
    )


def _overview(tenant_id: str | None, hours: int) -> data.Overview:
    # Several admins refreshing must not each scan the store: one scan per scope every few seconds.
    state = dashboard_state()
    key = (tenant_id, hours)
    with state.lock:
        cached = state.overviews.get(key)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS and not current_app.config.get("TESTING"):
        return cached[1]
    runtime = runtime_of(current_app)
    report = runtime.call(data.collect(runtime.store, runtime.broadcasts, tenant_id=tenant_id, hours=hours), timeout=60)
    with state.lock:
        state.overviews[key] = (time.monotonic(), report)
    return report


def _statuses() -> set[str] | None:
    wanted = {s for s in request.args.getlist("status") if s in STATUS_TEXT}
    return wanted or None


@blp.get("/unreachable")
@signed_in
def unreachable(viewer: Viewer) -> Any:
    runtime = runtime_of(current_app)
    statuses = _statuses()
    rows, capped = runtime.call(data.unreachable_people(runtime.store, viewer.tenant_id, statuses), timeout=60)
    return render_template(
        "dashboard/unreachable.html",
        viewer=viewer,
        rows=rows,
        capped=capped,
        selected=statuses or set(),
        statuses=STATUS_TEXT,
        utc=data.utc,
        query=request.query_string.decode(),
    )


CSV_COLUMNS = ["tenantId", "name", "upn", "email", "aadObjectId", "status", "lastSeen", "lastError"]


@blp.get("/unreachable.csv")
@signed_in
def unreachable_csv(viewer: Viewer) -> Response:
    runtime = runtime_of(current_app)
    rows, _ = runtime.call(data.unreachable_people(runtime.store, viewer.tenant_id, _statuses()), timeout=60)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        row.tenant_id, row.name, row.upn, row.email, row.aad_object_id, row.status,
                        data.utc(row.last_seen, "%Y-%m-%dT%H:%M:%SZ"), row.last_error,
                    )
                ]
            )  # fmt: skip
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    stamp = data.utc(time.time(), "%Y%m%d-%H%M")
    return Response(
        lines(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="unreachable-{stamp}.csv"'},
    )


def _cell(value: Any) -> str:
    """Names come from Teams profiles: a leading = + - @ would run as a formula in Excel, so quote it."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@blp.get("/style.css")
def style() -> Response:
    response = Response(render_template("dashboard/style.css"), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# ``campaign`` is imported for its routes: it registers the broadcast pages on ``blp``.
__all__ = ["blp", "campaign", "init_dashboard"]
