"""Many Teams users written straight into a store, as if each had installed the bot once.

Crash tests and benchmarks need thousands of reachable people; posting thousands of install
activities would also send thousands of welcome messages, which is not what they measure.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass

from teams_proactive.bot.model import Reference, ReferenceStatus, Surface
from teams_proactive.bot.store.base import Store
from teams_proactive.bot.store.sqlite import SqliteStore

from tests.support.activities import BOT_ID


@dataclass(frozen=True, slots=True)
class SeededPerson:
    upn: str
    user_key: str
    user_id: str
    conversation_id: str
    tenant_id: str


def people(
    count: int, *, tenant_id: str = "tenant-bench", prefix: str = "user", documented_ids: bool = False
) -> list[SeededPerson]:
    """``documented_ids``: Teams user and chat ids of the length Teams gives them (what a memory
    figure must be measured with); otherwise short readable ones."""
    return [
        SeededPerson(
            upn=f"{prefix}{i:05d}@{tenant_id}.example",
            user_key=f"00000000-0000-4000-8000-{i:012d}",
            user_id=teams_id("29:1", f"{prefix}-{i}", USER_ID_LENGTH) if documented_ids else f"29:{prefix}-{i:05d}",
            conversation_id=teams_id("a:1", f"{prefix}-chat-{i}", CHAT_ID_LENGTH)
            if documented_ids
            else f"a:{prefix}-chat-{i:05d}",
            tenant_id=tenant_id,
        )
        for i in range(count)
    ]


# The lengths of the ids in Microsoft's documented activities (tests/fixtures/teams/activities):
# user ids "29:1…" 89-90 characters, personal chat ids "a:1…" 97-131.
USER_ID_LENGTH = 90
CHAT_ID_LENGTH = 131


def teams_id(kind: str, seed: str, length: int) -> str:
    """An id shaped like Teams' own: ``kind`` ("29:1", "a:1") then base64url characters, derived from
    ``seed`` (the same seed, the same id)."""
    digest = hashlib.sha512(seed.encode()).digest()
    return (kind + base64.urlsafe_b64encode(digest + digest).decode().rstrip("="))[:length]


def reference(person: SeededPerson, service_url: str, *, status: str = ReferenceStatus.ACTIVE) -> Reference:
    return Reference(
        tenant_id=person.tenant_id,
        user_key=person.user_key,
        surface=Surface.TEAMS,
        conversation_id=person.conversation_id,
        service_url=service_url,
        channel_id="msteams",
        user_id=person.user_id,
        bot_id=BOT_ID,
        aad_object_id=person.user_key,
        bot_name="Notifications",
        name=person.upn.split("@")[0],
        upn=person.upn,
        email=person.upn,
        locale="en-US",
        timezone="Europe/Amsterdam",
        conversation_type="personal",
        status=status,
        member_looked_up=True,
        conversation_reference={
            "channelId": "msteams",
            "serviceUrl": service_url,
            "conversation": {
                "id": person.conversation_id,
                "conversationType": "personal",
                "tenantId": person.tenant_id,
            },
            "user": {"id": person.user_id, "aadObjectId": person.user_key},
            "bot": {"id": BOT_ID, "name": "Notifications"},
        },
    )


async def seed(store: Store, seeded: list[SeededPerson], service_url: str) -> None:
    for person in seeded:
        await store.references.write(reference(person, service_url), None)


def seed_sqlite(path: str, seeded: list[SeededPerson], service_url: str) -> None:
    """Write the people into the SQLite file a server process will open."""

    async def run() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await seed(store, seeded, service_url)
        finally:
            await store.close()

    asyncio.run(run())
