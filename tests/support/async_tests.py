"""``async def`` tests without an asyncio plugin: each runs on a fresh event loop of its own.

A conftest opts in with ``from tests.support.async_tests import loop, pytest_pyfunc_call``; the
``loop`` fixture is autouse there, so fixtures can open async resources on the loop the test runs on.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    event_loop: asyncio.AbstractEventLoop = pyfuncitem.funcargs["loop"]  # type: ignore[assignment]
    names = pyfuncitem._fixtureinfo.argnames
    event_loop.run_until_complete(function(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
