"""In-memory backend for tests: the same semantics as the others, nothing survives the process."""

from teams_proactive.bot.store.memory.store import MemoryStore

__all__ = ["MemoryStore"]
