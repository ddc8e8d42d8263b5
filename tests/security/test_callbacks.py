"""A hostile caller's callback URLs: every internal address class, names that resolve inside, DNS
rebinding, redirects, user:password@, a 100 MB answer, too many subscriptions, and the metrics.

Names are answered by a scripted aiohttp resolver (no /etc/hosts, no DNS); the guard checks the
address each socket is about to connect to, so refused internal targets never see a packet. Only
loopback servers are started; non-loopback addresses are refused before any connect.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from teams_proactive.bot.callback_guard import (
    CallbackClient,
    CallbackPolicy,
    CallbackRefused,
    check_callback_url,
    normalised_host,
    parse_networks,
)
from teams_proactive.bot.model import Subscription
from teams_proactive.bot.webhooks import WebhookSettings

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, pending_events, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.server_process import ServerProcess

FAST = WebhookSettings(
    max_attempts=3, backoff_base_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=5, lease_seconds=10
)
LIMITS = aiohttp.ClientTimeout(total=5)
REFUSED_LOG = "refused by policy"

# One URL per address class and spelling; each must be refused at Subscribe with a 400.
INTERNAL_URLS = {
    "loopback": "https://127.0.0.1/hook",
    "loopback, short form": "https://127.1/hook",
    "loopback, hex": "https://0x7f000001/hook",
    "loopback, decimal": "https://2130706433/hook",
    "loopback, octal": "https://0177.0.0.1/hook",
    "loopback name": "https://localhost:8443/hook",
    "loopback subdomain": "https://api.localhost/hook",
    "loopback IPv6": "https://[::1]/hook",
    "IPv4-mapped IPv6 loopback": "https://[::ffff:127.0.0.1]/hook",
    "IPv4-mapped IPv6 metadata": "https://[::ffff:a9fe:a9fe]/hook",
    "NAT64 private": "https://[64:ff9b::a00:1]/hook",
    "6to4 loopback": "https://[2002:7f00:1::1]/hook",
    "cloud metadata (link-local)": "https://169.254.169.254/metadata/instance",
    "link-local IPv6": "https://[fe80::1]/hook",
    "private 10/8": "https://10.0.0.1/hook",
    "private 172.16/12": "https://172.16.5.4/hook",
    "private 192.168/16": "https://192.168.1.1/hook",
    "unique local IPv6": "https://[fd00::1]/hook",
    "shared 100.64/10": "https://100.64.0.1/hook",
    "unspecified": "https://0.0.0.0/hook",
    "unspecified IPv6": "https://[::]/hook",
    "multicast": "https://224.0.0.1/hook",
    "multicast IPv6": "https://[ff02::1]/hook",
    "reserved 240/4": "https://240.0.0.1/hook",
    "broadcast": "https://255.255.255.255/hook",
    "benchmarking 198.18/15": "https://198.18.0.1/hook",
    "documentation": "https://192.0.2.1/hook",
    # Spellings the HTTP client normalises (NFKC, IDNA) into an internal address before it connects.
    "fullwidth digits": "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/hook",
    "ideographic full stops": "https://127\u30020\u30020\u30021/hook",
    "fullwidth full stops, private": "https://10\uff0e0\uff0e0\uff0e5/hook",
    "circled digits": "https://\u2460\u2461\u2466.0.0.1/hook",
    "fullwidth localhost": "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/hook",
}
OTHER_REFUSED = {
    "plain http to a public name": ("http://prod-00.westeurope.logic.azure.com/workflows/x", "https"),
    "plain http to a public address": ("http://52.1.2.3/hook", "https"),
    "user and password": ("https://user:pw@prod-00.westeurope.logic.azure.com/workflows/x", "user name or password"),
    "user only": ("https://user@prod-00.westeurope.logic.azure.com/workflows/x", "user name or password"),
    "not http": ("ftp://prod-00.westeurope.logic.azure.com/x", "https URL"),
    "relative": ("/workflows/x", "https URL"),
}


# ---- Subscribe -------------------------------------------------------------------------------
@pytest.fixture
def closed_env(app_env: dict[str, str]) -> dict[str, str]:
    """The app as shipped: no CALLBACK_ALLOWED_NETWORKS."""
    return {k: v for k, v in app_env.items() if k != "CALLBACK_ALLOWED_NETWORKS"}


def test_subscribe_refuses_internal_targets_userinfo_and_plain_http(
    closed_env: dict[str, str], connector: FakeConnector
) -> None:
    with LiveApp(closed_env) as live:
        wrong: list[str] = []
        cases = {name: (url, "addresses") for name, url in INTERNAL_URLS.items()} | OTHER_REFUSED
        for name, (url, words) in cases.items():
            response = live.api("POST", "/api/v1/subscriptions/user-messages", API_KEY, json={"notificationUrl": url})
            error = response.json().get("error", {})
            if (
                response.status_code != 400
                or error.get("code") != "ValidationError"
                or error.get("target") != "notificationUrl"
                # The schema's URL check refuses some spellings first ("Not a valid URL."): also a refusal.
                or (words not in error.get("message", "") and "Not a valid URL" not in error.get("message", ""))
            ):
                wrong.append(f"{name}: {response.status_code} {response.text}")
        assert not wrong, "\n".join(wrong)
        assert live.runtime.call(live.runtime.store.subscriptions.list_all()) == []
        # Power Automate's own callback host is a public https name: accepted.
        ok = live.api(
            "POST",
            "/api/v1/subscriptions/user-messages",
            API_KEY,
            json={"notificationUrl": "https://prod-00.westeurope.logic.azure.com:443/workflows/x/run?sig=s"},
        )
        assert ok.status_code == 201, ok.text


def test_send_card_and_wait_refuses_the_same_callbacks_before_sending(
    closed_env: dict[str, str], connector: FakeConnector, make_user
) -> None:
    """A webhook action's callback URL (the engine's, or anyone's with a send key) follows the same rules."""
    card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Approve?"}],
        "actions": [{"type": "Action.Submit", "title": "OK"}],
    }
    with LiveApp(closed_env) as live:
        user = make_user()
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        wrong: list[str] = []
        cases = {name: (url, "addresses") for name, url in INTERNAL_URLS.items()} | OTHER_REFUSED
        for name, (url, words) in cases.items():
            body = {"recipient": user.upn, "card": card, "notificationUrl": url}
            response = live.api("POST", "/api/v1/cards/wait", API_KEY, json=body)
            error = response.json().get("error", {})
            message = error.get("message", "")
            if response.status_code != 400 or (words not in message and "Not a valid URL" not in message):
                wrong.append(f"{name}: {response.status_code} {response.text}")
        assert not wrong, "\n".join(wrong)
        # Nothing was sent or registered.
        assert [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")] == []
        assert live.runtime.call(live.runtime.store.subscriptions.list_all()) == []


def test_the_guard_itself_refuses_every_spelling() -> None:
    """Some spellings are already refused by the schema's URL check; the guard must not rely on it."""
    for name, url in INTERNAL_URLS.items():
        with pytest.raises(CallbackRefused) as refused:
            check_callback_url(url, CallbackPolicy())
        assert refused.value.rule == "address", name
    check_callback_url("https://52.1.2.3/hook", CallbackPolicy())  # a public address literal is fine


def test_the_check_sees_the_host_the_client_will_connect_to() -> None:
    # aiohttp connects to yarl's host; the check at creation normalises to the same one.
    for url in [*INTERNAL_URLS.values(), "https://b\u00fccher.example/x", "https://\uff26\uff2c\uff2f\uff37.example/"]:
        if "[" in url:
            continue  # IPv6 literals: yarl rewrites them into their compressed form, checked as addresses above
        raw_host = yarl.URL(url).raw_host
        assert raw_host is not None
        assert normalised_host(urlsplit(url).hostname or "") == raw_host.lower(), url


def test_the_allow_list_opens_only_its_networks_and_plain_http_only_there() -> None:
    policy = CallbackPolicy(allowed_networks=parse_networks("127.0.0.1/32, 10.1.0.0/16"))
    check_callback_url("http://127.0.0.1:8080/hook", policy)
    check_callback_url("https://10.1.2.3/hook", policy)
    check_callback_url("http://flows.internal.example/hook", policy)  # connect time decides (below)
    for url in ("http://127.0.0.2/hook", "https://10.2.0.1/hook", "http://52.1.2.3/hook", "https://[::1]/hook"):
        with pytest.raises(CallbackRefused):
            check_callback_url(url, policy)
    with pytest.raises(ValueError, match="CALLBACK_ALLOWED_NETWORKS"):
        parse_networks("10.0.0.0/8, intranet")


def test_subscriptions_per_key_are_capped(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp({**app_env, "MAX_SUBSCRIPTIONS_PER_KEY": "2"}) as live, CallbackServer() as hooks:
        for name in ("a", "b"):
            body = {"notificationUrl": hooks.url(name)}
            assert live.api("POST", "/api/v1/subscriptions/user-messages", API_KEY, json=body).status_code == 201
        third = live.api(
            "POST", "/api/v1/subscriptions", API_KEY, json={"event": "any", "notificationUrl": hooks.url()}
        )
        assert third.status_code == 409, third.text
        assert third.json()["error"]["code"] == "SubscriptionLimitReached"
        assert "MAX_SUBSCRIPTIONS_PER_KEY=2" in third.json()["error"]["message"]
        assert len(live.runtime.call(live.runtime.store.subscriptions.list_all())) == 2


def test_waiting_cards_do_not_use_up_the_trigger_cap(
    app_env: dict[str, str], connector: FakeConnector, make_user
) -> None:
    """A waiting card's callback registration is not a trigger: a key with many approvals waiting (they
    may wait 30 days) can still turn a flow with a trigger on."""
    with LiveApp({**app_env, "MAX_SUBSCRIPTIONS_PER_KEY": "2"}) as live, CallbackServer() as hooks:
        user = make_user()
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        card = {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": "Approve?"}],
            "actions": [{"type": "Action.Submit", "title": "OK"}],
        }
        for run in range(3):
            body = {"recipient": user.upn, "card": card, "notificationUrl": hooks.url(f"run{run}")}
            assert live.api("POST", "/api/v1/cards/wait", API_KEY, json=body).status_code == 201
        trigger = live.api(
            "POST", "/api/v1/subscriptions/user-messages", API_KEY, json={"notificationUrl": hooks.url("t")}
        )
        assert trigger.status_code == 201, trigger.text


# ---- connect time: names, rebinding ------------------------------------------------------------
class ScriptedResolver(AbstractResolver):
    """Answers each name with the next address of its script (the last one repeats)."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = {name: list(addresses) for name, addresses in script.items()}
        self.lookups: list[tuple[str, str]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.script[host]
        address = addresses.pop(0) if len(addresses) > 1 else addresses[0]
        self.lookups.append((host, address))
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


def post_all(client_args: dict[str, Any], urls: list[str]) -> list[int]:
    async def run() -> list[int]:
        client = CallbackClient(**client_args)
        try:
            return [(await client.post(url, b"{}", headers={}, limits=LIMITS))[0] for url in urls]
        finally:
            await client.close()

    return asyncio.run(run())


NAMED_INSIDE = {
    "loopback.attacker.example": "127.0.0.1",
    "metadata.attacker.example": "169.254.169.254",
    "private.attacker.example": "10.0.0.7",
    "shared.attacker.example": "100.100.100.200",
    "mapped.attacker.example": "::ffff:127.0.0.1",
    "v6loop.attacker.example": "::1",
    "ula.attacker.example": "fd12::1",
    "multicast.attacker.example": "239.1.1.1",
    "zero.attacker.example": "0.0.0.0",
}


def test_names_that_resolve_inside_are_refused_at_connect(caplog: pytest.LogCaptureFixture) -> None:
    with CallbackServer() as hooks:
        port = int(hooks.url().split(":")[2].split("/")[0])
        resolver = ScriptedResolver({name: [address] for name, address in NAMED_INSIDE.items()})
        urls = [f"https://{name}:{port}/hook" for name in NAMED_INSIDE]
        with caplog.at_level(logging.WARNING, logger="teams_proactive.bot.callback_guard"):
            statuses = post_all({"policy": CallbackPolicy(), "resolver": resolver}, urls)
        assert statuses == [0] * len(urls)  # "no answer", like a host that is down
        assert [host for host, _ in resolver.lookups] == list(NAMED_INSIDE)  # each was resolved, then refused
        assert sum(REFUSED_LOG in r.getMessage() for r in caplog.records) == len(urls)
        assert hooks.received == []  # the loopback one never connected


def test_dns_rebinding_is_refused_on_the_next_connect(caplog: pytest.LogCaptureFixture) -> None:
    """The allow-list stands in for "public" (tests reach only loopback): the name first resolves to
    an allowed address and is posted to, then to another loopback address and to cloud metadata."""
    with CallbackServer() as hooks:
        port = int(hooks.url().split(":")[2].split("/")[0])
        name = "flow.rebind.example"
        resolver = ScriptedResolver({name: ["127.0.0.1", "127.0.0.2", "169.254.169.254"]})
        policy = CallbackPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
        url = f"http://{name}:{port}/workflows/rebind/triggers/manual/run"
        with caplog.at_level(logging.WARNING, logger="teams_proactive.bot.callback_guard"):
            statuses = post_all({"policy": policy, "resolver": resolver}, [url, url, url])
        assert statuses == [202, 0, 0]
        assert [address for _, address in resolver.lookups] == ["127.0.0.1", "127.0.0.2", "169.254.169.254"]
        assert len(hooks.received) == 1
        assert sum(REFUSED_LOG in r.getMessage() for r in caplog.records) == 2


def test_plain_http_reaches_only_the_allow_list_whatever_the_name_resolves_to() -> None:
    resolver = ScriptedResolver({"public.example": ["52.1.2.3"]})
    policy = CallbackPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
    # Refused before any packet leaves: the address is public but the scheme is http.
    assert post_all({"policy": policy, "resolver": resolver}, ["http://public.example/hook"]) == [0]


def test_a_user_and_password_in_a_stored_url_is_never_sent() -> None:
    with CallbackServer() as hooks:
        url = hooks.url().replace("http://", "http://user:pw@")
        policy = CallbackPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
        assert post_all({"policy": policy}, [url]) == [0]
        assert hooks.received == []


# ---- https on loopback (allowed by the operator) -----------------------------------------------
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and flow.test.example, made here (no CA, nothing from the network)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flow.test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("flow.test.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_callbacks_to_an_allowed_loopback_server(tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    with CallbackServer() as hooks:
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        hooks._http.socket = server_context.wrap_socket(hooks._http.socket, server_side=True)
        port = int(hooks.url().split(":")[2].split("/")[0])
        trust = ssl.create_default_context(cafile=str(cert))
        allowed = CallbackPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
        resolver = ScriptedResolver({"flow.test.example": ["127.0.0.1"]})
        urls = [f"https://127.0.0.1:{port}/workflows/a/run", f"https://flow.test.example:{port}/workflows/b/run"]
        assert post_all({"policy": allowed, "ssl_context": trust, "resolver": resolver}, urls) == [202, 202]
        assert len(hooks.received) == 2
        # The same server without the allow-list: refused before the TLS handshake.
        refused = post_all({"policy": CallbackPolicy(), "ssl_context": trust, "resolver": resolver}, urls[1:])
        assert refused == [0] and len(hooks.received) == 2
        # And a certificate the client does not trust is a failure, not a fallback to plain http.
        assert post_all({"policy": allowed}, urls[:1]) == [0] and len(hooks.received) == 2


# ---- the relay: redirects, metrics -------------------------------------------------------------
def callbacks_outcomes(live: LiveApp) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = live.api("GET", "/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "teams_proactive_webhook_callbacks_total":
                found[sample.labels["outcome"]] = sample.value
    return found


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(before) | set(after) if after.get(k) != before.get(k)
    }


def test_redirects_are_not_followed(app_env: dict[str, str], connector: FakeConnector, make_user: Any) -> None:
    user = make_user()
    with LiveApp(app_env, runtime_kwargs={"webhook_settings": FAST}) as live, CallbackServer() as hooks:
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        body = {"notificationUrl": hooks.url("flow")}
        assert live.api("POST", "/api/v1/subscriptions/user-messages", API_KEY, json=body).status_code == 201
        db = Path(app_env["STORE_URL"].removeprefix("sqlite:///"))
        for status in (302, 307, 308):
            hooks.answer_next(status, headers={"Location": hooks.url("elsewhere")})
            assert live.activity(act.message(user, connector.service_url(), "hi")).status_code == 200
            wait_until(lambda: not pending_events(db) and hooks.received, what="the redirect answer")
        assert [c.status for c in hooks.received] == [302, 307, 308]  # each posted once, never retried
        assert hooks.bodies("elsewhere", ok_only=False) == []  # and never followed


def test_a_refused_target_counts_like_any_unreachable_host(
    app_env: dict[str, str], connector: FakeConnector, make_user: Any
) -> None:
    """webhook_callbacks_total must not tell a caller which internal addresses exist: a subscription the
    policy refuses (stored before the operator narrowed it) fails exactly like a closed port."""
    user = make_user()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with LiveApp(app_env, runtime_kwargs={"webhook_settings": FAST}) as live:
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        db = Path(app_env["STORE_URL"].removeprefix("sqlite:///"))
        outcomes = []
        for url in (f"http://127.0.0.1:{closed_port}/hook", "https://10.0.0.1/hook"):
            subscription = Subscription(
                id=f"s{len(outcomes)}", owner="bootstrap", event="userMessage", callback_url=url
            )
            live.runtime.call(live.runtime.store.subscriptions.create(subscription))
            before = callbacks_outcomes(live)
            assert live.activity(act.message(user, connector.service_url(), "hi")).status_code == 200
            wait_until(lambda: not pending_events(db), what="the event to be given up")
            outcomes.append(delta(before, callbacks_outcomes(live)))
            live.runtime.call(live.runtime.store.subscriptions.delete(subscription.id))
        assert outcomes[0] == outcomes[1] == {"retried": FAST.max_attempts - 1, "failed": 1}


# ---- a 100 MB answer -------------------------------------------------------------------------
class HugeAnswer:
    """Answers every POST with a 100 MB body (streamed, never held in memory); counts what it sent."""

    SIZE = 100 * 1024 * 1024
    CHUNK = b"x" * 65536

    def __init__(self) -> None:
        self.sent = 0
        self.cut_off = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", str(owner.SIZE))
                self.end_headers()
                try:
                    while owner.sent < owner.SIZE:
                        self.wfile.write(owner.CHUNK)
                        owner.sent += len(owner.CHUNK)
                except OSError:
                    owner.cut_off.set()  # the client hung up

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/huge/run"

    def __enter__(self) -> HugeAnswer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def huge() -> Iterator[HugeAnswer]:
    with HugeAnswer() as server:
        yield server


@pytest.mark.slow
def test_a_100_mb_answer_is_cut_off_and_memory_stays_flat(
    tmp_path: Path, connector: FakeConnector, make_user: Any, huge: HugeAnswer
) -> None:
    user = make_user()
    env = {
        "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "MicrosoftAppId": "",
        "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }
    with ServerProcess(env, log_path=tmp_path / "server.log") as server:
        assert server.activity(act.install(user, connector.service_url())).status_code == 200
        body = {"notificationUrl": huge.url}
        assert server.api("POST", "/api/v1/subscriptions/user-messages", API_KEY, json=body).status_code == 201
        before = rss_bytes(server.pid)
        assert server.activity(act.message(user, connector.service_url(), "hello")).status_code == 200
        assert huge.cut_off.wait(60), "the relay never hung up on the 100 MB answer"
        wait_until(lambda: not pending_events(tmp_path / "store.db"), what="the event to be settled")
        after = rss_bytes(server.pid)
    print(
        f"100 MB answer: {huge.sent / 2**20:.1f} MiB sent before the cut; server RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    )
    # Before the cap the server grew by the size of the answer; socket buffers hold a few MB at most.
    assert huge.sent < 16 * 1024 * 1024, huge.sent
    assert after - before < 40 * 1024 * 1024, (before, after)
