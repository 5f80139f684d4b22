"""Shared fixtures: real Kafka and PostgreSQL, started lazily and once per session.

``LEADRELAY_TEST_KAFKA_BOOTSTRAP`` / ``LEADRELAY_TEST_DATABASE_URL`` point the tests at existing
servers instead. Without them the harness in ``tests/harness/`` starts its own; when a
prerequisite is missing a developer's run skips those tests, while CI (``CI`` set) fails them.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings

from tests.harness.common import HarnessUnavailableError
from tests.harness.kafka_broker import KafkaBroker
from tests.harness.postgres import PostgresServer, scratch_database
from tests.harness.shared import shared_kafka, shared_postgres, stop_noted

KAFKA_ENV = "LEADRELAY_TEST_KAFKA_BOOTSTRAP"
DATABASE_ENV = "LEADRELAY_TEST_DATABASE_URL"
_KAFKA_FIXTURES = frozenset({"kafka_bootstrap", "kafka_broker"})
_SHARED_ROOT = "leadrelay_shared_servers"
"""The ``workerinput`` key of the directory where xdist workers note the servers they share."""
_shared_root_key = pytest.StashKey[str]()
# Hypothesis's per-example deadline is a timing assertion: on a loaded machine a 200 ms example
# fails a correct property. Tests must not depend on load, so no example has a deadline.
settings.register_profile("leadrelay", deadline=None)
settings.load_profile("leadrelay")

_TESTS = Path(__file__).parent
_BROKER_PATHS = (_TESTS / "e2e", _TESTS / "integration" / "test_embedded_broker.py")
"""Tests that need a broker without declaring a Kafka fixture: every end-to-end test runs
``leadrelay up``, which starts the embedded broker or asks for the harness's at run time, and
the embedded broker's own tests start one each."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so ``-m "not kafka"`` selects those needing none."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _KAFKA_FIXTURES or _needs_a_broker(item.path):
            item.add_marker(pytest.mark.kafka)
        if "postgres_url" in names:
            item.add_marker(pytest.mark.postgres)


def _needs_a_broker(path: Path) -> bool:
    return any(path == root or root in path.parents for root in _BROKER_PATHS)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``--numprocesses auto``: two workers per core. A test mostly waits (for the broker, the
    database, a consumer group, its own polls), so one worker per core leaves the cores idle."""
    return 2 * (os.cpu_count() or 1)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """Hand every xdist worker the directory where they note the servers they share."""
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    if _shared_root_key not in config.stash:
        config.stash[_shared_root_key] = tempfile.mkdtemp(prefix="leadrelay-shared-")
    node.workerinput[_SHARED_ROOT] = config.stash[_shared_root_key]  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller stops the servers its workers shared, once they are all done."""
    root = config.stash.get(_shared_root_key, None)
    if root is not None:
        stop_noted(Path(root))


def _shared_root(config: pytest.Config) -> Path | None:
    """The directory of shared servers in an xdist worker; None in a plain session."""
    workerinput: dict[str, str] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else Path(workerinput[_SHARED_ROOT])


def _unavailable(error: HarnessUnavailableError) -> NoReturn:
    if os.environ.get("CI"):
        raise error
    pytest.skip(str(error))


@pytest.fixture(scope="session")
def _harness_broker() -> Iterator[KafkaBroker]:
    """A broker of this process's own (the session's in a plain run, the restart tests' under
    xdist: they must not stop a broker other workers use)."""
    broker = KafkaBroker()
    try:
        broker.start()
    except HarnessUnavailableError as error:
        _unavailable(error)
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``bootstrap.servers`` of the test broker (external if the variable is set)."""
    external = os.environ.get(KAFKA_ENV)
    if external:
        return external
    shared = _shared_root(request.config)
    if shared is not None:
        try:
            return shared_kafka(shared)
        except HarnessUnavailableError as error:
            _unavailable(error)
    broker: KafkaBroker = request.getfixturevalue("_harness_broker")
    return broker.bootstrap


@pytest.fixture
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[KafkaBroker]:
    """A harness broker itself, for tests that stop and restart it: connect to its
    ``bootstrap``, which under xdist is not ``kafka_bootstrap``'s.

    Whatever the test did, the broker runs again afterwards, so an outage never leaks into the
    next test.
    """
    if os.environ.get(KAFKA_ENV):
        pytest.skip("needs the harness broker")
    broker: KafkaBroker = request.getfixturevalue("_harness_broker")
    broker.start()
    yield broker
    broker.start()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a PostgreSQL database for the session (external if the variable is set)."""
    external = os.environ.get(DATABASE_ENV)
    if external:
        yield external
        return
    shared = _shared_root(request.config)
    if shared is not None:
        try:
            url = shared_postgres(shared)
        except HarnessUnavailableError as error:
            _unavailable(error)
        yield url
        return
    server = PostgresServer()
    try:
        server.start()
    except HarnessUnavailableError as error:
        _unavailable(error)
    yield server.url
    server.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file in the test's temporary directory."""
    return f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An empty database per test, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    server_url: str = request.getfixturevalue("postgres_url")
    async with scratch_database(server_url) as url:
        yield url


@pytest.fixture
def unique_topic_prefix() -> str:
    """A topic prefix no other test uses, e.g. ``t1a2b3c4d.``."""
    return f"t{uuid.uuid4().hex[:8]}."
