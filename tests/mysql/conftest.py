"""A private MariaDB server for the MySQL tests: own data directory, own socket, free port.

One server per test session (start-up costs about a second); each test gets its own database.
Where ``mariadbd`` is missing the tests skip, unless CALLBRIDGE_TEST_REQUIRE_SERVICES=1 (CI),
in which case they fail.
"""

from __future__ import annotations

import os
import shutil
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


def _find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Where our test UDF comes from; the fixture compiles it into the server's plugin directory.
UDF_SOURCE = Path(__file__).parent / "udf" / "sys_exec.c"
UDF_LIBRARY = "cb_test_sys_exec.so"


def _build_udf(plugins: Path) -> str | None:
    """Compile ``udf/sys_exec.c`` into ``plugins``; the reason it could not, or None.

    The server's own plugins are linked in beside it, since ``--plugin-dir`` replaces their
    directory.
    """
    plugins.mkdir()
    default = Path("/usr/lib/mysql/plugin")
    if default.is_dir():
        for plugin in default.iterdir():
            (plugins / plugin.name).symlink_to(plugin)
    gcc = shutil.which("gcc")
    config = shutil.which("mariadb_config") or shutil.which("mysql_config")
    if not gcc or not config:
        return "gcc or mariadb_config not found (install Debian's gcc and libmariadb-dev)"
    cflags = subprocess.run(
        [config, "--cflags"], capture_output=True, text=True, check=False
    ).stdout.split()
    built = subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-O2",
            *cflags,
            "-o",
            str(plugins / UDF_LIBRARY),
            str(UDF_SOURCE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        return f"the test UDF did not compile: {built.stderr[-500:]}"
    return None


@dataclass
class MariaDB:
    """A running test server; ``root_dsn(db)`` and ``connect(db)`` reach it as root."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    #: Why the test sys_exec UDF is not available (None: it is, as UDF_LIBRARY).
    udf_missing: str | None = None

    def root_dsn(self, database: str = "mysql") -> MysqlDsn:
        return parse_dsn(f"mysql://root@{self.host}:{self.port}/{database}")

    def url(self, database: str, user: str = "root", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"mysql://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "mysql", **kw: Any) -> pymysql.connections.Connection[Any]:
        return self.root_dsn(database).connect(**kw)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    server = _find("mariadbd") or _find("mysqld")
    install = _find("mariadb-install-db") or _find("mysql_install_db")
    if not server or not install:
        reason = "mariadbd / mariadb-install-db not found (install Debian's mariadb-server)"
        if os.environ.get("CALLBRIDGE_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and CALLBRIDGE_TEST_REQUIRE_SERVICES=1")
        pytest.skip(reason)
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
    udf_missing = _build_udf(base / "plugins")
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
            f"--plugin-dir={base / 'plugins'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = MariaDB("127.0.0.1", port, process, log, udf_missing)
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


def skip_or_fail(reason: str) -> None:
    """Skip a test for a missing tool, or fail it when CI requires every service."""
    if os.environ.get("CALLBRIDGE_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and CALLBRIDGE_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def sys_exec_udf(mariadb: MariaDB) -> Iterator[None]:
    """Our test ``sys_exec`` UDF (a real ``system()``), created for one test, dropped after."""
    if mariadb.udf_missing:
        skip_or_fail(mariadb.udf_missing)
    if not shutil.which("curl"):
        skip_or_fail("curl not found (install Debian's curl)")
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
