"""/mcp under the two real servers, on the same port as the bot and the REST API: gunicorn (production,
deploy/gunicorn.conf.py) and ``teams-proactive serve`` (waitress); message bodies stay out of the logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from mcp.client.session import ClientSession

from tests.conftest import API_KEY
from tests.mcp.support import with_session
from tests.operator.test_gunicorn import Gunicorn, gunicorn  # noqa: F401 - the fixture
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.server_process import ServerProcess


def tell(upn: str, text: str):  # type: ignore[no-untyped-def]
    async def work(session: ClientSession) -> Any:
        listed = await session.list_tools()
        sent = await session.call_tool("send_message", {"recipient": upn, "text": text, "wait": 30})
        return listed, sent

    return work


def test_mcp_under_gunicorn(gunicorn: Gunicorn, connector: FakeConnector, make_user) -> None:  # noqa: F811
    user = make_user()
    assert requests.post(gunicorn.url + "/api/messages", json=act.install(user, connector.service_url("a"))).ok
    for i in range(4):  # several sessions, so both workers very likely answer some
        listed, sent = with_session(gunicorn.url, API_KEY, tell(user.upn, f"mcp via gunicorn {i}"))
        assert len(listed.tools) == 7
        assert sent.is_error is False and sent.structured_content["status"] == "delivered"
    assert [r.activity["text"] for r in connector.sent(user.conversation_id)][-4:] == [
        f"mcp via gunicorn {i}" for i in range(4)
    ]
    log = gunicorn.stop()
    assert "mcp via gunicorn" not in log
    assert '"path": "/mcp"' in log or '"path":"/mcp"' in log  # the same access log as every other route


def test_mcp_under_teams_proactive_serve(tmp_path: Path, connector: FakeConnector, make_user) -> None:
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "CONNECTOR_API_KEY": API_KEY, "SERVER_CWD": str(tmp_path)}
    with ServerProcess(env, log_path=tmp_path / "serve.log") as server:
        user = make_user()
        assert server.http.post(server.url + "/api/messages", json=act.install(user, connector.service_url("a"))).ok
        listed, sent = with_session(server.url, API_KEY, tell(user.upn, "mcp via serve"))
    assert len(listed.tools) == 7
    assert sent.is_error is False and sent.structured_content["status"] == "delivered"
    assert "mcp via serve" in [r.activity["text"] for r in connector.sent(user.conversation_id)]
    assert "mcp via serve" not in (tmp_path / "serve.log").read_text()
