"""SQLite API keys."""

from __future__ import annotations

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import ApiKey
from teams_proactive.bot.store.base.keys import Keys
from teams_proactive.bot.store.sqlite.database import SqliteDatabase


class SqliteKeys(Keys):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def create(self, key: ApiKey) -> ApiKey:
        return await self.db.create_doc("api_keys", key, key.id, {"name": key.name})

    async def get(self, key_id: str) -> ApiKey | None:
        return await self.db.get_doc("api_keys", ApiKey, key_id)

    async def list_all(self) -> list[ApiKey]:
        rows = await self.db.run(lambda c: c.execute("SELECT etag, body FROM api_keys ORDER BY name").fetchall())
        return [ApiKey.from_doc(jsoncodec.loads(body), etag=etag) for etag, body in rows]

    async def write(self, key: ApiKey, etag: str) -> ApiKey:
        return await self.db.replace_doc("api_keys", key, key.id, etag, {"name": key.name})
