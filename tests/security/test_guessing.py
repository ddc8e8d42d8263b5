"""Key guessing: the dashboard cookie carries nothing computed from a key, bootstrap sessions end when
the key changes or on sign-out, and wrong API keys and sign-ins are limited per client address, which
behind a proxy is read from X-Forwarded-For as far as TRUSTED_PROXY_HOPS says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from teams_proactive.connector.client_limits import normalise

from tests.conftest import API_KEY
from tests.security.conftest import error_of
from tests.support.dashboard import post_login
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

SHORT_KEY = "abc123"  # the kind of key a quick start gets: guessable, if a cookie let anyone test guesses


def cookie_payload(cookie: str) -> Any:
    """What any holder of the cookie can read: itsdangerous' payload is only base64 (maybe zlib)."""
    compressed = cookie.startswith(".")
    data = cookie.split(".")[1] if compressed else cookie.split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def sign_in(live: LiveApp, key: str, **headers: str) -> requests.Response:
    return post_login(live.http, live.url, {"api_key": key}, headers=headers, allow_redirects=False)


def dashboard(live: LiveApp, cookie: str) -> int:
    response = requests.get(
        live.url + "/dashboard/", cookies={"teams_proactive_dashboard": cookie}, allow_redirects=False, timeout=30
    )
    return response.status_code


def test_the_cookie_holds_a_random_session_id_and_nothing_from_the_key(
    app_env: dict[str, str], connector: FakeConnector
) -> None:
    env = {**app_env, "CONNECTOR_API_KEY": SHORT_KEY}
    with LiveApp(env) as live:
        cookies = []
        for _ in range(2):
            response = sign_in(live, SHORT_KEY)
            assert response.status_code == 302, response.text
            cookies.append(response.cookies["teams_proactive_dashboard"])
            live.http.cookies.clear()
        payloads = [cookie_payload(c) for c in cookies]
        for payload in payloads:
            assert set(payload) == {"dashboard", "_permanent"} or set(payload) == {"dashboard"}
            assert set(payload["dashboard"]) == {"kind", "sid"} and payload["dashboard"]["kind"] == "bootstrap"
        assert payloads[0]["dashboard"]["sid"] != payloads[1]["dashboard"]["sid"]  # random, not derived
        for cookie in cookies:
            assert dashboard(live, cookie) == 200
            # The old offline attack: derive the signing key from a guess and check the signature.
            guess = hmac.new(SHORT_KEY.encode(), b"teams-proactive dashboard session", hashlib.sha256).hexdigest()
            probe = Flask("probe")
            probe.secret_key = guess
            serializer = SecureCookieSessionInterface().get_signing_serializer(probe)
            assert serializer is not None
            with pytest.raises(Exception, match=r"[Ss]ignature"):
                serializer.loads(cookie)
            assert (
                SHORT_KEY not in json.dumps(payloads)
                and hashlib.sha256(SHORT_KEY.encode()).hexdigest()[:8] not in cookie
            )


def test_a_bootstrap_session_ends_when_the_key_changes_or_on_sign_out(
    app_env: dict[str, str], connector: FakeConnector, tmp_path: Path
) -> None:
    env = {**app_env, "SECRET_KEY": "s" * 64}
    with LiveApp(env) as live:
        cookie = sign_in(live, API_KEY).cookies["teams_proactive_dashboard"]
        assert dashboard(live, cookie) == 200
    with LiveApp({**env, "CONNECTOR_API_KEY": "rotated-key-0123456789abcdef"}) as live:
        assert dashboard(live, cookie) == 302  # opened with the old key: over
    with LiveApp(env) as live:
        assert dashboard(live, cookie) == 200  # the same key again: the session was kept in the store
        copy = cookie
        http = requests.Session()
        http.cookies.set("teams_proactive_dashboard", cookie, path="/dashboard")
        http.post(live.url + "/dashboard/logout", allow_redirects=False)
        assert dashboard(live, copy) == 302  # a copied cookie dies with the session


def wrong_key(i: int) -> str:
    return f"tpk_{i:012x}_{'x' * 43}"


def test_wrong_api_keys_are_limited_per_client_address(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp({**app_env, "FAILED_AUTH_PER_MINUTE": "5"}) as live:
        codes = [live.api("GET", "/api/v1/recipients", wrong_key(i)).status_code for i in range(5)]
        assert codes == [401] * 5
        blocked = live.api("GET", "/api/v1/recipients", wrong_key(99))
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
        assert error_of(blocked)["code"] == "Throttled"
        # Even the right key: the address is blocked, so a guess that happens to be right learns nothing.
        assert live.api("GET", "/api/v1/recipients", API_KEY).status_code == 429
        # Without TRUSTED_PROXY_HOPS, X-Forwarded-For is the client's own say-so and changes nothing.
        spoofed = live.api("GET", "/api/v1/recipients", API_KEY, headers={"X-Forwarded-For": "198.51.100.1"})
        assert spoofed.status_code == 429
        # The dashboard shares the count.
        assert sign_in(live, API_KEY).status_code == 429
        # Requests without credentials are not guesses: still a plain 401.
        assert live.api("GET", "/api/v1/recipients").status_code == 401


def test_behind_a_proxy_the_forwarded_client_address_counts(app_env: dict[str, str], connector: FakeConnector) -> None:
    env = {**app_env, "FAILED_AUTH_PER_MINUTE": "3", "TRUSTED_PROXY_HOPS": "1"}
    with LiveApp(env) as live:
        # App Service's front end appends "address:port"; what the client wrote before it is ignored.
        for i, forwarded in enumerate(["203.0.113.7:50001", "10.9.9.9, 203.0.113.7:50002", "203.0.113.7:50003"]):
            response = live.api("GET", "/api/v1/recipients", wrong_key(i), headers={"X-Forwarded-For": forwarded})
            assert response.status_code == 401
        for forwarded in ("203.0.113.7:60000", "1.2.3.4, 203.0.113.7"):
            response = live.api("GET", "/api/v1/recipients", API_KEY, headers={"X-Forwarded-For": forwarded})
            assert response.status_code == 429, forwarded
        # Another client behind the same proxy is not held up by the guesser.
        other = live.api("GET", "/api/v1/recipients", API_KEY, headers={"X-Forwarded-For": "198.51.100.9:40000"})
        assert other.status_code == 200, other.text
        # The dashboard sign-in counts the same way.
        for i in range(3):
            assert sign_in(live, f"guess-{i}", **{"X-Forwarded-For": "192.0.2.44:1234"}).status_code == 401
        assert sign_in(live, API_KEY, **{"X-Forwarded-For": "192.0.2.44:9999"}).status_code == 429
        assert sign_in(live, API_KEY, **{"X-Forwarded-For": "192.0.2.45:1234"}).status_code == 302


def test_client_addresses_are_normalised() -> None:
    assert normalise("203.0.113.7:50001") == "203.0.113.7"
    assert normalise("203.0.113.7") == "203.0.113.7"
    assert normalise("[2001:db8:1:2:3::9]:443") == "2001:db8:1:2::/64"
    assert normalise("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"  # one /64, one budget
    assert normalise("::ffff:203.0.113.7") == "203.0.113.7"
    assert normalise("not-an-address") == "not-an-address"
