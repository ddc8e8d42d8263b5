"""The store's shape: small interfaces, one per kind of record, and each backend a package with a module per repository."""

from __future__ import annotations

import importlib
import inspect

import pytest
from teams_proactive.bot.store import base
from teams_proactive.bot.store.base import REPOSITORIES, Store

MAX_METHODS = 20
BACKENDS = ("memory", "sqlite", "cosmos")
INTERFACES = {
    "references": base.References,
    "outbox": base.Outbox,
    "broadcasts": base.Broadcasts,
    "keys": base.Keys,
    "subscriptions": base.Subscriptions,
    "erasures": base.Erasures,
    "leases": base.Leases,
    "quarantine": base.Quarantine,
}


def public_methods(cls: type) -> list[str]:
    return sorted(name for name, value in inspect.getmembers(cls, callable) if not name.startswith("_"))


def store_interfaces() -> list[type]:
    """Every abstract class the store package defines (found, not listed, so a new one is checked too)."""
    found = {Store, *INTERFACES.values()}
    for name in dir(base):
        value = getattr(base, name)
        if inspect.isclass(value) and inspect.isabstract(value):
            found.add(value)
    return sorted(found, key=lambda cls: cls.__name__)


def test_every_repository_has_an_interface() -> None:
    assert set(REPOSITORIES) == set(INTERFACES)
    for name, interface in INTERFACES.items():
        assert inspect.get_annotations(Store)[name] == interface.__name__


@pytest.mark.parametrize("interface", store_interfaces(), ids=lambda cls: cls.__name__)
def test_no_store_interface_has_more_than_20_methods(interface: type) -> None:
    methods = public_methods(interface)
    assert len(methods) <= MAX_METHODS, f"{interface.__name__} has {len(methods)} public methods: {methods}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_is_a_package_with_a_module_per_repository(backend: str) -> None:
    package = importlib.import_module(f"teams_proactive.bot.store.{backend}")
    assert hasattr(package, "__path__"), f"{backend} is a module, not a package"
    importlib.import_module(f"teams_proactive.bot.store.{backend}.database")  # what the repositories share
    store_class = next(value for value in vars(package).values() if inspect.isclass(value) and issubclass(value, Store))
    for name, interface in INTERFACES.items():
        module = importlib.import_module(f"teams_proactive.bot.store.{backend}.{name}")
        implementations = [
            value
            for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, interface) and value.__module__ == module.__name__
        ]
        assert len(implementations) == 1, f"{module.__name__} should implement {interface.__name__} once"
        assert not inspect.isabstract(implementations[0]), f"{implementations[0].__name__} leaves methods out"
    assert not inspect.isabstract(store_class)


async def test_a_store_hands_out_its_backends_repositories(store: Store, backend: str) -> None:
    for name, repository in store.repositories().items():
        assert isinstance(repository, INTERFACES[name])
        assert type(repository).__module__ == f"teams_proactive.bot.store.{backend}.{name}"
