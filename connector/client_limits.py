"""Failed credentials per client address: wrong API keys, tokens and dashboard sign-ins slow a guesser down.

The client address is the socket's peer, or, behind ``TRUSTED_PROXY_HOPS`` proxies (App Service's
front end is one), the address the outermost trusted proxy saw, read from the right of
``X-Forwarded-For``: entries further left were written by the client and prove nothing. Azure's
front ends write ``address:port``; the port is dropped (a new connection must not mean a new
budget), and an IPv6 client counts per /64 (one customer's prefix). Counts are per process: every
gunicorn worker and instance keeps its own, so the effective limit is this one times their number.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque

from flask import current_app, request
from teams_proactive.connector.settings import ConnectorSettings

WINDOW_SECONDS = 60.0
EXTENSION = "teams_proactive.failed_credentials"
_MAX_TRACKED = 10_000


def normalise(address: str) -> str:
    """``1.2.3.4:5678`` -> ``1.2.3.4``; ``[2001:db8::1]:443`` -> ``2001:db8::/64``; junk stays junk (capped)."""
    text = address.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text[:64] or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address() -> str:
    settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
    hops = settings.trusted_proxy_hops
    if hops > 0:
        forwarded = [
            part.strip() for header in request.headers.getlist("X-Forwarded-For") for part in header.split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return normalise(forwarded[-hops])
        # Fewer entries than trusted proxies: the request did not come through them; use the peer.
    return normalise(request.remote_addr or "?")


class FailureLimiter:
    """Failed credential checks per client address in the last minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        if self.per_minute <= 0:
            return None
        at = time.monotonic()
        with self._lock:
            window = self._failures.get(client)
            if not window:
                return None
            while window and window[0] <= at - WINDOW_SECONDS:
                window.popleft()
            if len(window) < self.per_minute:
                return None
            return window[0] + WINDOW_SECONDS - at

    def record(self, client: str) -> None:
        at = time.monotonic()
        with self._lock:
            if len(self._failures) > _MAX_TRACKED:  # forget addresses whose last failure is over a minute old
                for address in [a for a, w in self._failures.items() if not w or w[-1] <= at - WINDOW_SECONDS]:
                    del self._failures[address]
            self._failures.setdefault(client, deque()).append(at)


def failure_limiter() -> FailureLimiter:
    limiter: FailureLimiter | None = current_app.extensions.get(EXTENSION)
    if limiter is None:
        settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
        limiter = current_app.extensions.setdefault(EXTENSION, FailureLimiter(settings.failed_auth_per_minute))
    return limiter
