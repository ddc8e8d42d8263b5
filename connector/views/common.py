"""Helpers every view uses: run on the bot loop, turn service refusals into API errors, build URLs."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from flask import current_app, request
from teams_proactive.bot.errors import Rejected
from teams_proactive.bot.runtime import BotRuntime
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.extension import runtime_of

T = TypeVar("T")


def runtime() -> BotRuntime:
    return runtime_of(current_app)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a coroutine on the bot loop; a service refusal becomes the matching API error."""
    try:
        return runtime().call(coro, timeout=timeout)
    except Rejected as exc:
        raise ApiError(exc.code, exc.message, exc.target, retry_after=exc.retry_after) from exc


def absolute_url(path: str) -> str:
    """An absolute URL for Location headers (Power Automate polls it as given)."""
    base = current_app.extensions["teams_proactive.connector_settings"].public_base_url
    if not base:
        base = request.host_url.rstrip("/")
    return base + path
