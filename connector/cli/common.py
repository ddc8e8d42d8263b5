"""What every command shares: settings from .env, the store opened for one action, and checks on the shell's input."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dotenv import load_dotenv
from teams_proactive.bot import text
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import create_store
from teams_proactive.bot.store.base import Store

T = TypeVar("T")


class Subcommands(Protocol):
    """What ``add_subparsers()`` returns (argparse keeps its class private): each command module adds its own."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def settings() -> BotSettings:
    """The bot's settings from the environment, a ``.env`` in the working folder filling in what is unset."""
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    return BotSettings.from_env()


async def with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    """Run one action on the configured store, opened for it and closed after."""
    store: Store = create_store(settings())
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def card_file(path: str) -> Any:
    """An Adaptive Card read from a JSON file; its strings are checked as the API checks a body's."""
    card = json.loads(Path(path).read_text(encoding="utf-8"))
    text.check(card, "--card")
    return card


def unreadable_argument(args: argparse.Namespace) -> str | None:
    """A refusal naming the option whose value is not valid text (a non-UTF-8 byte in the shell's argument
    arrives as a lone surrogate, which the store could not read back); None when every value is."""
    for name, value in vars(args).items():
        bad = text.find(value, "--" + name.replace("_", "-"))
        if bad is not None:
            return str(bad)
    return None
