"""A private MariaDB server for the MySQL tests: own data directory, own socket, free port.

One server per test session (start-up costs about a second); each test gets its own database.
Where ``mariadbd`` is missing the tests skip, unless CALLBRIDGE_TEST_REQUIRE_SERVICES=1 (CI),
in which case they fail (``callbridge.testing.services``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from callbridge.mysql.dsn import MysqlDsn, parse_dsn
from callbridge.testing.services import find_binary, require


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MariaDB:
    """A running test server; ``root_dsn(db)`` and ``connect(db)`` reach it as root."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def root_dsn(self, database: str = "mysql") -> MysqlDsn:
        return parse_dsn(f"mysql://root@{self.host}:{self.port}/{database}")

    def url(self, database: str, user: str = "root", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"mysql://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "mysql", **kw: Any) -> pymysql.connections.Connection[Any]:
        return self.root_dsn(database).connect(**kw)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    server = require("mariadb")  # skips (fails in CI) without mariadbd and mariadb-install-db
    install = find_binary("mariadb-install-db")
    assert install is not None
    base = tmp_path_factory.mktemp("mariadb")
    data = base / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    port = _free_port()
    log = base / "error.log"
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            *user,
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={base / 'mysqld.sock'}",
            f"--pid-file={base / 'mysqld.pid'}",
            f"--log-error={log}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = MariaDB("127.0.0.1", port, process, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            db.connect().close()
            break
        except pymysql.err.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"mariadbd did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
    try:
        yield db
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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
