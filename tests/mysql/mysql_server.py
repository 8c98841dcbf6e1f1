"""A private MariaDB server: own data directory, own socket, free port, our test UDF.

Used by the MySQL tests' fixtures (conftest.py) and by ``bench/mysql.py``; no pytest here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from callbridge.mysql.dsn import MysqlDsn, parse_dsn
from callbridge.testing.services import find_binary


def _find(name: str) -> str | None:
    return find_binary(name)


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
    gcc = _find("gcc")
    config = _find("mariadb_config") or _find("mysql_config")
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

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Unavailable(RuntimeError):
    """mariadbd or mariadb-install-db is not installed."""


def start_mariadb(base: Path) -> MariaDB:
    """Initialise a data directory under ``base`` and start a server on a free port.

    Raises Unavailable without the binaries, RuntimeError when the server does not start.
    """
    server = _find("mariadbd") or _find("mysqld")
    install = _find("mariadb-install-db") or _find("mysql_install_db")
    if not server or not install:
        raise Unavailable(
            "mariadbd / mariadb-install-db not found (install Debian's mariadb-server)"
        )
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
                raise RuntimeError(
                    f"mariadbd did not start:\n{log.read_text(errors='replace')[-2000:]}"
                ) from None
            time.sleep(0.1)
    return db
