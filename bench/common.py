"""Shared set-up for the benchmarks: a fake Bot Connector, seeded people, the real server process."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.fake_connector import FakeConnector
from tests.support.people import SeededPerson, people, seed_sqlite
from tests.support.server_process import ServerProcess

API_KEY = "bench-bootstrap-key-0123456789"


@dataclass
class Bench:
    fake: FakeConnector
    server: ServerProcess
    people: list[SeededPerson]
    workdir: Path


@contextmanager
def bench_setup(
    *,
    count: int,
    latency: tuple[float, float],
    rate_cap: float | None,
    env: dict[str, str] | None = None,
    fake_factory: Callable[..., FakeConnector] = FakeConnector,
) -> Iterator[Bench]:
    """A fake connector, ``count`` people seeded into a fresh SQLite file, and the server on it."""
    with (
        tempfile.TemporaryDirectory(prefix="teams-proactive-bench-") as tmp,
        fake_factory(latency=latency, rate_cap_per_second=rate_cap) as fake,
    ):
        workdir = Path(tmp)
        db = workdir / "store.db"
        seeded = people(count)
        seed_sqlite(str(db), seeded, fake.service_url("bench"))
        server_env = {
            "STORE_URL": f"sqlite:///{db}",
            "CONNECTOR_API_KEY": API_KEY,
            "RATE_LIMIT_PER_MINUTE": "0",  # the benchmark measures the engine, not the per-key API limit
            "SERVER_CWD": tmp,  # no developer .env file is read
        }
        server_env.update(env or {})
        with ServerProcess(server_env, log_path=workdir / "server.log") as server:
            yield Bench(fake, server, seeded, workdir)


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.1f}  p95 {percentile(values, 95):.1f}  p99 {percentile(values, 99):.1f}"
        f"  mean {statistics.fmean(values):.1f}  max {max(values):.1f}"
    )
