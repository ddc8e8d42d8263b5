"""The real app served over real HTTP (waitress on 127.0.0.1, in a thread) for integration tests."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import requests
from waitress.server import create_server

from bot.runtime import BotRuntime
from bot.settings import BotSettings
from connector import create_app
from tests.support.fake_connector import free_port


class LiveApp:
    def __init__(self, env: Mapping[str, str], *, runtime_kwargs: dict[str, Any] | None = None) -> None:
        self.env = dict(env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime = BotRuntime(BotSettings.from_env(self.env), **(runtime_kwargs or {}))
        self.app = create_app({"ENV": self.env}, runtime=self.runtime)
        self._server = create_server(self.app, host="127.0.0.1", port=self.port, threads=24)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.http = requests.Session()

    def __enter__(self) -> LiveApp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self.runtime.stop()
        self.http.close()

    def api(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["X-API-Key"] = key
        return self.http.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def activity(self, activity: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.http.post(self.url + "/api/messages", json=activity, timeout=60, **kwargs)
