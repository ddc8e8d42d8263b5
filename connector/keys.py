"""API keys: made once and shown once; the store keeps only a hash of the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from teams_proactive.bot.model import ApiKey, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Store

# "install": installIfMissing (the app installed in Teams through Graph for people who lack it), a
# permission of its own since GRAPH_INSTALL lets it put the bot in anyone's Teams in the tenant.
SCOPES = ("send", "broadcast", "admin", "install")
PREFIX = "tpk"
# The identity of the CONNECTOR_API_KEY caller. Stored key ids are hex, so none can equal it.
BOOTSTRAP_ID = "builtin:bootstrap"
# Names the service gives its own callers (logs and the dashboard show them): a stored key may not
# take one, so that a name always says who it is.
RESERVED_NAMES = frozenset({"bootstrap", "cli", "dashboard", "admin", "system"})
RESERVED_PREFIXES = ("entra:", "builtin:")


def reserved(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in RESERVED_NAMES or lowered.startswith(RESERVED_PREFIXES)


class KeyError_(Exception):
    """A key could not be created or found (the message says why)."""


def _hash(secret: str) -> str:
    # The secret is 256 random bits, so one SHA-256 is enough; no password-style stretching needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(presented: str) -> tuple[str, str] | None:
    parts = presented.strip().split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(store: Store, name: str, *, tenant_id: str | None, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key; returns the record and the plaintext key (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise KeyError_("a key needs a name")
    if reserved(name):
        raise KeyError_(
            f"'{name}' is reserved for the service's own callers (bootstrap, cli, dashboard, admin, system,"
            " entra:..., builtin:...); choose another name"
        )
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise KeyError_(f"scopes must be among {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    record = ApiKey(id=key_id, name=name, secret_hash=_hash(secret), scopes=sorted(set(scopes)), tenant_id=tenant_id)
    try:
        stored = await store.keys.create(record)
    except ConcurrencyConflict as exc:
        raise KeyError_(f"a key named '{name}' exists already") from exc
    return stored, f"{PREFIX}_{key_id}_{secret}"


async def verify(store: Store, presented: str) -> ApiKey | None:
    parsed = parse(presented)
    if parsed is None:
        return None
    key_id, secret = parsed
    record = await store.keys.get(key_id)
    if record is None:
        # Hash anyway so a wrong id and a wrong secret take the same time.
        hmac.compare_digest(_hash(secret), _hash(""))
        return None
    if not hmac.compare_digest(_hash(secret), record.secret_hash) or record.revoked_at is not None:
        return None
    return record


async def revoke(store: Store, name: str) -> ApiKey:
    for record in await store.keys.list_all():
        if record.name == name and record.revoked_at is None:

            def mark(current: ApiKey) -> ApiKey:
                current.revoked_at = now()
                return current

            return await store.keys.write(mark(record.copy()), record.etag or "")
    raise KeyError_(f"no active key named '{name}'")
