"""Fixtures for the Redis journal tests: one private redis-server per session, and a
``backend`` fixture that runs the journal contract tests against SQLite and Redis alike.

Where ``redis-server`` is missing the Redis tests skip, unless
CALLBRIDGE_TEST_REQUIRE_SERVICES=1 (CI), in which case they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_support import REQUIRE_ENV, Backend, RedisServer, require_redis, start_redis

from callbridge.journal.base import Journal
from callbridge.journal.redis import RedisJournal
from callbridge.journal.sqlite import SqliteJournal

_NEEDS_SERVER = {"redis_server", "spare_dir", "redis_journal"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``redis`` every test here that starts or uses a redis-server."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).parent != here:
            continue
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        uses_redis_backend = callspec is not None and callspec.params.get("backend") == "redis"
        if names & _NEEDS_SERVER or uses_redis_backend:
            item.add_marker(pytest.mark.redis)


def _need_redis() -> None:
    reason = require_redis()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    _need_redis()
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spare_dir(tmp_path: Path) -> Callable[[str], Path]:
    """Directories for extra servers a test starts itself (after checking the binary)."""
    _need_redis()
    return lambda name: tmp_path / name


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "journal.sqlite3"
        result = Backend("sqlite", lambda: SqliteJournal(path))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.unique_url()
        result = Backend("redis", lambda: RedisJournal(url))
    yield result
    result.close_all()


@pytest.fixture
def journal(backend: Backend) -> Journal:
    return backend.open()


@pytest.fixture
def redis_journal(redis_server: RedisServer) -> Iterator[RedisJournal]:
    journal = RedisJournal(redis_server.unique_url())
    yield journal
    journal.close()
