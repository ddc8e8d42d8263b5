"""The WSGI entry point for gunicorn (Azure App Service): ``gunicorn -c deploy/gunicorn.conf.py teams_proactive.connector.wsgi:app``.

Each gunicorn worker imports this module after the fork and builds its own app, whose bot loop runs
in a thread of that worker. Do not use ``--preload``: threads do not survive a fork, so an app built in
the master would leave every worker without its loop. If it happens anyway, the first request in each
worker builds a fresh app for that worker (and says so in the log) rather than hanging.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from dotenv import load_dotenv
from flask import Flask
from teams_proactive.bot.settings import BotSettings
from teams_proactive.connector import create_app
from teams_proactive.connector.extension import runtime_of
from teams_proactive.connector.heap import freeze_startup_heap
from teams_proactive.connector.local_mode import LocalModeRefused, check_wsgi
from teams_proactive.connector.logs import configure_logging

log = logging.getLogger(__name__)


class PerProcessApp:
    """A WSGI callable that owns one Flask app per process id."""

    def __init__(self, factory: Callable[[], Flask] = create_app) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.flask: Flask | None = factory()

    def release(self) -> None:
        """Stop this process's app (its bot loop thread and dispatcher). gunicorn's pre_fork hook calls
        it when the app was preloaded in the master: a process with running threads is not safe to fork,
        and the master must not send messages."""
        with self._lock:
            if self.flask is not None:
                runtime = runtime_of(self.flask)
                runtime.stop()
                atexit.unregister(runtime.stop)
                self.flask = None

    def _current(self) -> Flask:
        flask = self.flask
        if flask is None or self._pid != os.getpid():
            with self._lock:
                if self.flask is None or self._pid != os.getpid():
                    log.warning(
                        "app built before a fork (gunicorn --preload?): building one for worker %d", os.getpid()
                    )
                    if self.flask is not None:
                        # Inherited from the parent without its loop thread: its exit hook would hang.
                        atexit.unregister(runtime_of(self.flask).stop)
                    self.flask = self._factory()
                    freeze_startup_heap()
                    self._pid = os.getpid()
                flask = self.flask
        return flask

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._current()(environ, start_response)


# gunicorn's exit code for "the app failed to load": the master stops instead of respawning workers.
APP_LOAD_ERROR = 4


def _refuse_accidental_local_mode() -> None:
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    try:
        check_wsgi(BotSettings.from_env())
    except LocalModeRefused as exc:
        log.critical("%s", exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from exc


configure_logging(os.environ.get("LOG_FORMAT", "json"), os.environ.get("LOG_LEVEL", "INFO").upper())
_refuse_accidental_local_mode()
app = PerProcessApp()
