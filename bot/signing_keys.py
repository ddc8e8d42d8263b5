"""The channel's token signing keys, fetched without blocking the bot loop: aiohttp, a time limit, failures cached.

botframework-connector 4.17 fetches OpenID metadata and keys with ``requests.get`` (no timeout) from
inside its coroutines (``jwt_token_extractor._OpenIdMetadata``): while Microsoft's endpoint stalls, the
whole event loop stalls with it, and with it the connector API and the dispatcher. ``install`` replaces
the SDK's lookup (``JwtTokenExtractor.get_open_id_metadata``, the one seam it offers) with
``SigningKeys``, which has the same ``get(key_id)`` contract but:
- fetches with aiohttp under a total time limit (BOT_METADATA_TIMEOUT_SECONDS),
- lets one fetch run at a time per document (concurrent turns wait for it instead of each fetching),
- remembers a failure for FAILURE_CACHE_SECONDS, so a dead endpoint costs one wait, not one per request,
- keeps serving the keys it has when a refresh fails (keys rotate over days, not seconds).
A fetch that cannot produce keys raises ``SigningKeysUnavailable``; the endpoint answers 503 for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

# The SDK's own schedule: keys are re-read after a day, or at most hourly when a token names a key we
# do not know (a rotation); an unknown key id can therefore not be used to make us fetch on every request.
REFRESH_AFTER_SECONDS = 24 * 3600
UNKNOWN_KEY_REFRESH_AFTER_SECONDS = 3600
FAILURE_CACHE_SECONDS = 30.0
MAX_DOCUMENT_BYTES = 1024 * 1024


class SigningKeysUnavailable(Exception):
    """The OpenID metadata or key set could not be fetched in time, and no earlier keys are known."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """What the SDK's token extractor reads of a key (the shape of its ``_OpenIdConfig``)."""

    public_key: Any
    endorsements: list[str]


@dataclass(slots=True)
class SigningKeys:
    """The keys published behind one OpenID metadata document."""

    url: str
    timeout_seconds: float
    keys: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: float = float("-inf")
    failed_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, key_id: str | None) -> SigningKey | None:
        if time.monotonic() - self.fetched_at > REFRESH_AFTER_SECONDS:
            await self._refresh()
        key = self._find(key_id)
        if key is None and time.monotonic() - self.fetched_at > UNKNOWN_KEY_REFRESH_AFTER_SECONDS:
            await self._refresh()
            key = self._find(key_id)
        if key is None:
            # The SDK reads ``.endorsements`` of what it gets; an unknown key is a refused token.
            raise PermissionError("the token is signed with a key the channel does not publish")
        return key

    def _find(self, key_id: str | None) -> SigningKey | None:
        for key in self.keys:
            if key.get("kid") == key_id:
                return SigningKey(RSAAlgorithm.from_jwk(json.dumps(key)), list(key.get("endorsements", [])))
        return None

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self.fetched_at < UNKNOWN_KEY_REFRESH_AFTER_SECONDS and self.keys:
                return  # another turn refreshed while this one waited
            if now - self.failed_at < FAILURE_CACHE_SECONDS:
                self._raise_unless_keys("the last attempt failed moments ago")
                return
            try:
                self.keys = await asyncio.wait_for(self._fetch(), self.timeout_seconds)
                self.fetched_at = time.monotonic()
            except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
                self.failed_at = time.monotonic()
                log.warning("bot signing keys could not be fetched: %s", type(exc).__name__)
                self._raise_unless_keys(type(exc).__name__)

    def _raise_unless_keys(self, reason: str) -> None:
        if not self.keys:
            raise SigningKeysUnavailable(f"OpenID metadata unavailable ({reason})")

    async def _fetch(self) -> list[dict[str, Any]]:
        # A short-lived session: this runs about once a day, on whichever loop validates the token. Its TLS
        # context is made now, so the system's trust (SSL_CERT_FILE included) is read as it is today.
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context())
        async with aiohttp.ClientSession(trust_env=False, connector=connector) as session:
            document = await _read_json(session, self.url)
            key_set = await _read_json(session, str(document["jwks_uri"]))
        keys = key_set["keys"]
        if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
            raise ValueError("the key set has no list of keys")
        return keys


async def _read_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url, allow_redirects=False) as response:
        response.raise_for_status()
        body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError("the document is larger than any OpenID metadata")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the document is not a JSON object")
    return document


# Per event loop (each runtime has its own), per metadata URL: an asyncio.Lock belongs to one loop.
_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SigningKeys]] = weakref.WeakKeyDictionary()
_timeouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()
_sdk_lookup = JwtTokenExtractor.get_open_id_metadata


def _lookup(metadata_url: str) -> Any:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on a loop: nothing of ours to hand out
        return _sdk_lookup(metadata_url)
    timeout = _timeouts.get(loop)
    if timeout is None:  # a loop that never called install(): the SDK's behaviour
        return _sdk_lookup(metadata_url)
    registry = _registries.setdefault(loop, {})
    keys = registry.get(metadata_url)
    if keys is None:
        keys = registry[metadata_url] = SigningKeys(metadata_url, timeout)
    return keys


def install(loop: asyncio.AbstractEventLoop, *, timeout_seconds: float) -> None:
    """Token validation on ``loop`` fetches keys through SigningKeys (process-wide seam, per-loop state)."""
    _timeouts[loop] = timeout_seconds
    JwtTokenExtractor.get_open_id_metadata = staticmethod(_lookup)  # type: ignore[method-assign]
