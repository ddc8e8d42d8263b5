"""Where callbacks may go: the URL rules checked at Subscribe and the guarded HTTP client every callback POST uses.

A maker-given URL must not turn the service into a proxy into its own network (cloud metadata at
169.254.169.254, an admin port on 127.0.0.1, a database on 10.x). Two checks, one policy:

- ``check_callback_url`` at Subscribe (and for webhook actions): https only (plain http only to an
  address literal inside ``CALLBACK_ALLOWED_NETWORKS``), no user:password@, and no address literal
  (in any spelling ``inet_aton`` accepts: ``0x7f000001``, ``2130706433``, ``127.1``) nor
  ``localhost`` name that points inside. Host names are *not* resolved here: a lookup at Subscribe
  would tell a caller which internal names exist, and a name can change its answer afterwards.
- ``CallbackClient`` at connect time: its connectors create every socket through a factory that
  sees the exact address about to be connected to, after DNS, and refuses anything that is not a
  public unicast address (or inside the allow-list), so a name that resolves to a public address
  at Subscribe and to 127.0.0.1 later (DNS rebinding) is refused on the second connect. Redirects
  are not followed, and at most 64 KB of an answer is read.

A refused target fails exactly like an unreachable host (a connection error), so the outcome a
caller can observe (``webhook_callbacks_total``, retries, timing) says nothing about which internal
addresses exist or answer.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import idna
from aiohttp.abc import AbstractResolver

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_RESPONSE_BYTES = 64 * 1024
# RFC 6598 shared address space (carrier-grade NAT, also Azure's and AWS's internal ranges): not
# "private" to Python before 3.12.4, so named here.
SHARED = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class CallbackRefused(ValueError):
    """A callback URL or address the policy does not allow; ``rule`` names the rule, for the maker."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """``CALLBACK_ALLOWED_NETWORKS`` and the subscription cap, as the relay and Subscribe apply them."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    max_subscriptions_per_key: int = 50
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CallbackPolicy:
        return cls(
            allowed_networks=parse_networks(env.get("CALLBACK_ALLOWED_NETWORKS", "")),
            max_subscriptions_per_key=_positive_int(env, "MAX_SUBSCRIPTIONS_PER_KEY", 50),
        )

    def allowed_internal(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allowed_networks)


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


def parse_networks(raw: str) -> tuple[IPNetwork, ...]:
    """``10.1.2.0/24, 127.0.0.1/32`` -> networks; a bad entry stops the start with its name."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"CALLBACK_ALLOWED_NETWORKS: {item!r} is not an IP network in CIDR form") from exc
    return tuple(networks)


# ---- address classes --------------------------------------------------------------------------
def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server part is public by definition
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def address_class(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (``loopback``, ``private`` …), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_class(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared", isinstance(address, ipaddress.IPv4Address) and address in SHARED),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
    )
    for name, hit in checks:
        if hit:
            return name
    if not address.is_global:  # anything else IANA marks as not globally reachable
        return "reserved"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one, in any spelling the C resolver would accept."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton is what getaddrinfo uses for numeric hosts: 0x7f000001, 2130706433, 127.1, 0177.0.0.1.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


# Full stops IDNA treats as ".": ideographic, fullwidth and halfwidth (UTS 46 maps them; so does yarl).
IDNA_DOTS = {0x3002: ".", 0xFF0E: ".", 0xFF61: "."}


def normalised_host(host: str) -> str:
    """``host`` as the HTTP client will connect to it: NFKC (fullwidth or circled digits become ASCII),
    the dots IDNA accepts, then IDNA (UTS 46) to ASCII. The check must see what the connection will
    use: fullwidth digits with ideographic full stops spell 127.0.0.1 to aiohttp (yarl normalises the same way)."""
    text = unicodedata.normalize("NFKC", host).translate(IDNA_DOTS)
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise CallbackRefused("url", "The notification URL's host is not a valid host name.") from exc
    return text.lower()


def check_address(address: IPAddress, policy: CallbackPolicy, *, plain_http: bool) -> None:
    """Raise ``CallbackRefused`` unless a callback may connect to ``address``."""
    if policy.allowed_internal(address):
        return
    if plain_http:
        raise CallbackRefused(
            "https", "Callbacks must use https (plain http only to networks in CALLBACK_ALLOWED_NETWORKS)."
        )
    kind = address_class(address)
    if kind is not None:
        raise CallbackRefused(
            "address",
            f"Callbacks may not go to {kind} addresses; an operator can allow internal networks with"
            " CALLBACK_ALLOWED_NETWORKS.",
        )


def check_callback_url(url: str, policy: CallbackPolicy) -> None:
    """The Subscribe-time check: raise ``CallbackRefused`` (with a maker-facing message) or return."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise CallbackRefused("url", "The notification URL is not a valid URL.") from exc
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("url", "The notification URL must be an absolute https URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise CallbackRefused("userinfo", "The notification URL must not contain a user name or password (user:pw@).")
    if any(ord(c) < 0x21 or c in "\\" for c in parts.netloc):
        raise CallbackRefused("url", "The notification URL's host contains characters a host name cannot have.")
    host = normalised_host(parts.hostname)
    plain_http = parts.scheme == "http"
    address = literal_address(host)
    if address is not None:
        check_address(address, policy, plain_http=plain_http)
        return
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: always loopback, whatever DNS says.
        check_address(ipaddress.IPv4Address("127.0.0.1"), policy, plain_http=plain_http)
        return
    if plain_http and not policy.allowed_networks:
        raise CallbackRefused("https", "Callbacks must use https.")
    # A plain-http name with an allow-list set passes here; the http connector reaches only
    # addresses inside the allow-list, whatever the name resolves to.


# ---- connect time ------------------------------------------------------------------------------
class _RefusedAddress(ConnectionRefusedError):
    """Raised from the socket factory: aiohttp reports it as a connection error, like a closed port."""


def _socket_factory(policy: CallbackPolicy, *, plain_http: bool) -> Any:
    def create(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        try:
            check_address(address, policy, plain_http=plain_http)
        except CallbackRefused as exc:
            # Logged for the operator only; the caller sees a connection failure like any other.
            log.warning("callback connection refused by policy (%s)", exc.rule)
            raise _RefusedAddress(errno.ECONNREFUSED, "callback target not allowed") from exc
        return socket.socket(family=family, type=type_, proto=proto)

    return create


class CallbackClient:
    """POSTs to maker-given URLs under the callback policy; ``post`` never raises for the target's sake.

    Two pooled sessions: https to public addresses (and the allow-list), plain http only to the
    allow-list. No proxy from the environment, no redirects, no cookies kept between callbacks.
    """

    def __init__(
        self,
        policy: CallbackPolicy,
        *,
        limit: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.policy = policy
        # Built now rather than at import, so SSL_CERT_FILE / SSL_CERT_DIR set by the operator apply.
        context = ssl_context or ssl.create_default_context()
        self._https = self._session(policy, limit, resolver, plain_http=False, ssl_context=context)
        self._http = self._session(policy, limit, resolver, plain_http=True, ssl_context=None)

    @staticmethod
    def _session(
        policy: CallbackPolicy,
        limit: int,
        resolver: AbstractResolver | None,
        *,
        plain_http: bool,
        ssl_context: ssl.SSLContext | None,
    ) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limit,
            ssl=ssl_context if ssl_context is not None else True,
            resolver=resolver,
            # Every new connection resolves afresh; the socket factory checks each answer anyway.
            use_dns_cache=False,
            socket_factory=_socket_factory(policy, plain_http=plain_http),
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    async def close(self) -> None:
        await self._https.close()
        await self._http.close()

    async def post(
        self, url: str, data: bytes, *, headers: Mapping[str, str], limits: aiohttp.ClientTimeout
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, up to 64 KB of the body); status 0 when nothing usable came back.

        A URL the policy refuses (stored before the policy changed, or a webhook action's URL) and a
        connection the socket factory refuses both come back as 0, like a host that is down.
        """
        try:
            check_callback_url(url, self.policy)
        except CallbackRefused as exc:
            log.warning("callback URL refused by policy (%s)", exc.rule)
            return 0, {}, b""
        session = self._http if url.lower().startswith("http:") else self._https
        try:
            async with session.post(
                url, data=data, headers=dict(headers), timeout=limits, allow_redirects=False
            ) as response:
                body = await _read_capped(response, self.policy.max_response_bytes)
                return response.status, response.headers, body
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("callback not reached (%s)", type(exc).__name__)
            return 0, {}, b""


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; a longer answer is cut off and its connection dropped
    (aiohttp's stream reader applies back-pressure, so the rest is never buffered)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    if not response.content.at_eof():
        response.close()  # do not return a half-read connection to the pool
    return b"".join(chunks)
