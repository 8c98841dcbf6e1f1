"""A private MariaDB server for the MySQL tests (``mysql_server.py``), and their fixtures.

One server per test session (start-up costs about a second); each test gets its own database.
Where ``mariadbd`` is missing the tests skip, unless CALLBRIDGE_TEST_REQUIRE_SERVICES=1 (CI),
in which case they fail (``callbridge.testing.services``); the same for the sys_exec tests
without gcc, the MariaDB headers (Debian's libmariadb-dev) or curl (the kit's ``udf`` service).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from mysql_server import UDF_LIBRARY, MariaDB, start_mariadb

from callbridge.testing.services import require


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    require("mariadb")  # skips (fails in CI) without mariadbd and mariadb-install-db
    try:
        db = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield db
    finally:
        db.stop()


@pytest.fixture
def database(mariadb: MariaDB) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def sys_exec_udf(mariadb: MariaDB) -> Iterator[None]:
    """Our test ``sys_exec`` UDF (a real ``system()``), created for one test, dropped after."""
    require("udf")  # skips (fails in CI) without gcc, mariadb_config or curl
    if mariadb.udf_missing:
        pytest.fail(mariadb.udf_missing)
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("DROP FUNCTION IF EXISTS sys_exec")
        cur.execute(f"CREATE FUNCTION sys_exec RETURNS INTEGER SONAME '{UDF_LIBRARY}'")
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP FUNCTION IF EXISTS sys_exec")
        conn.close()
