"""The bot loop's event loop: uvloop where it installs (Linux, macOS), asyncio's own loop elsewhere."""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    # Every Teams call, store callback and pacing timer of the dispatcher runs on this loop. uvloop
    # keeps its sockets, timers and callbacks in C (libuv): about a quarter less CPU per Bot
    # Connector call than asyncio's loop (bench/README.md). It is not built for Windows, where a
    # developer's machine falls back to asyncio with no change in behaviour.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
