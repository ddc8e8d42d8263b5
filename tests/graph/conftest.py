"""Graph fixtures: the fake Graph and token authority, and the real app pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.delivery.conftest import FAST
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.fake_graph import FakeGraph, GraphUser
from tests.support.live_app import LiveApp

TENANT = "tenant-contoso"


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[FakeGraph]:
    with FakeGraph(tmp_path) as fake:
        yield fake


@pytest.fixture
def graph_env(app_env: dict[str, str], graph: FakeGraph) -> dict[str, str]:
    return {**app_env, **graph.env()}


@pytest.fixture
def graph_live(graph_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp(graph_env, runtime_kwargs={"dispatcher_settings": FAST}) as app:
        yield app


@pytest.fixture
def known_tenant(graph_live: LiveApp, connector: FakeConnector, graph: FakeGraph) -> act.TeamsUser:
    """One person of the tenant has the bot already: the tenant's service URL is known."""
    user = act.TeamsUser(name="Megan Bowen", upn="megan@contoso.example", tenant_id=TENANT)
    graph.add_user(TENANT, GraphUser("Megan Bowen", user.upn, id=user.aad_object_id))
    response = graph_live.activity(act.install(user, connector.service_url("a")))
    assert response.status_code == 200, response.text
    return user


@pytest.fixture
def new_person(graph: FakeGraph) -> Callable[..., GraphUser]:
    def make(name: str = "Adele Vance", upn: str = "adele@contoso.example", **kwargs: object) -> GraphUser:
        return graph.add_user(TENANT, GraphUser(name, upn, **kwargs))  # type: ignore[arg-type]

    return make
