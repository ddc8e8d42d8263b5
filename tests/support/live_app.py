"""The real app served over real HTTP (a threaded WSGI server on 127.0.0.1) for integration tests.

Werkzeug's server is used here because it shuts down cleanly from another thread; the production
`serve` command (waitress) is exercised by the tests that start it as a process (server_process.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import requests
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.runtime import BotRuntime
from teams_proactive.bot.settings import BotSettings
from teams_proactive.connector import create_app
from werkzeug.serving import make_server


class LiveApp:
    def __init__(self, env: Mapping[str, str], *, runtime_kwargs: dict[str, Any] | None = None) -> None:
        self.env = dict(env)
        settings = BotSettings.from_env(self.env)
        kwargs = {"graph_settings": GraphSettings.from_env(self.env, settings), **(runtime_kwargs or {})}
        self.runtime = BotRuntime(settings, **kwargs)
        self.app = create_app({"ENV": self.env}, runtime=self.runtime)
        # Request lines would only add noise to captured logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Port 0: the OS picks a free port, so parallel test runs never collide.
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.http = requests.Session()

    def __enter__(self) -> LiveApp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()
        self.runtime.stop()
        self.http.close()

    def api(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["X-API-Key"] = key
        return self.http.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def activity(self, activity: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.http.post(self.url + "/api/messages", json=activity, timeout=60, **kwargs)
