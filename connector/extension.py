"""The bot runtime as a Flask extension (state in ``app.extensions``, not on a global)."""

from __future__ import annotations

import atexit

from flask import Flask
from teams_proactive.bot.runtime import BotRuntime

EXTENSION = "teams_proactive.runtime"


def init_runtime(app: Flask, runtime: BotRuntime) -> None:
    app.extensions[EXTENSION] = runtime.start()
    atexit.register(runtime.stop)


def runtime_of(app: Flask) -> BotRuntime:
    return app.extensions[EXTENSION]
