"""Many Teams users written straight into a store, as if each had installed the bot once.

Crash tests and benchmarks need thousands of reachable people; posting thousands of install
activities would also send thousands of welcome messages, which is not what they measure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.model import Reference, ReferenceStatus, Surface
from bot.store.base import Store
from bot.store.sqlite import SqliteStore
from tests.support.activities import BOT_ID


@dataclass(frozen=True, slots=True)
class SeededPerson:
    upn: str
    user_key: str
    user_id: str
    conversation_id: str
    tenant_id: str


def people(count: int, *, tenant_id: str = "tenant-bench", prefix: str = "user") -> list[SeededPerson]:
    return [
        SeededPerson(
            upn=f"{prefix}{i:05d}@{tenant_id}.example",
            user_key=f"00000000-0000-4000-8000-{i:012d}",
            user_id=f"29:{prefix}-{i:05d}",
            conversation_id=f"a:{prefix}-chat-{i:05d}",
            tenant_id=tenant_id,
        )
        for i in range(count)
    ]


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
        await store.write_reference(reference(person, service_url), None)


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
