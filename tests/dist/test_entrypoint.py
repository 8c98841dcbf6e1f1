"""The image's entrypoint (docker/entrypoint.sh), run directly: no Docker engine here.

It runs with the workspace's ``callbridge`` on PATH where the image has /opt/callbridge/bin:
what is tested is the script's own work (secrets from files, the data directory check, which
command runs, exec so the stop signal reaches callbridge, the health check), not the image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from server_support import INGRESS_TOKEN
from service_support import Service, service_env

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = str(ROOT / "docker" / "entrypoint.sh")
BIN = str(Path(sys.executable).parent)
#: Runs argv[1:] as uid/gid 10001, the image's user.
AS_10001 = "import os, sys; os.setgid(10001); os.setuid(10001); os.execv(sys.argv[1], sys.argv[1:])"


def env_of(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["CALLBRIDGE_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENTRYPOINT, *args],
        cwd=tmp_path,
        env=env_of(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_secret_file_becomes_the_variable_and_is_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "ingress_token"
    secret.write_text("s3cret-token-from-file\n")
    code = "import os; print(repr(os.environ['CALLBRIDGE_INGRESS_TOKEN']));"
    code += "print('CALLBRIDGE_INGRESS_TOKEN_FROM_FILE' in os.environ)"
    result = run(tmp_path, "python", "-c", code, CALLBRIDGE_INGRESS_TOKEN_FROM_FILE=str(secret))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["'s3cret-token-from-file'", "False"]
    # callbridge config sees it as set, masked.
    shown = run(tmp_path, "config", CALLBRIDGE_INGRESS_TOKEN_FROM_FILE=str(secret))
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("CALLBRIDGE_INGRESS_TOKEN "))
    assert "*" in line and "s3cret" not in shown.stdout + shown.stderr


def test_a_missing_secret_file_or_both_forms_are_refused(tmp_path: Path) -> None:
    missing = run(tmp_path, "config", CALLBRIDGE_INGRESS_TOKEN_FROM_FILE=str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "CALLBRIDGE_INGRESS_TOKEN_FROM_FILE" in missing.stderr
    assert "not a readable file" in missing.stderr
    secret = tmp_path / "t"
    secret.write_text("from-file")
    both = run(
        tmp_path,
        "config",
        CALLBRIDGE_INGRESS_TOKEN="from-env",
        CALLBRIDGE_INGRESS_TOKEN_FROM_FILE=str(secret),
    )
    assert both.returncode == 2
    assert "both CALLBRIDGE_INGRESS_TOKEN and CALLBRIDGE_INGRESS_TOKEN_FROM_FILE" in both.stderr
    assert "from-file" not in both.stderr and "from-env" not in both.stderr


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    """The image runs as uid 10001; a volume left to root is what this check catches."""
    locked = Path(tempfile.mkdtemp(prefix="callbridge-locked-"))  # /tmp: others may traverse
    try:
        if os.geteuid() == 0:  # root writes anywhere: run the script as the image's uid
            locked.chmod(0o700)
            prefix = [sys.executable, "-c", AS_10001]
            uid = "10001"
        else:
            locked.chmod(0o500)
            prefix, uid = [], str(os.geteuid())
        result = subprocess.run(
            [*prefix, ENTRYPOINT, "serve"],
            cwd="/",
            env=env_of(tmp_path, CALLBRIDGE_DATA_DIR=str(locked)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        locked.chmod(0o700)
        locked.rmdir()
    assert result.returncode == 2, result.stderr
    assert f"CALLBRIDGE_DATA_DIR={locked} is not writable by uid {uid}" in result.stderr


def test_arguments_choose_callbridge_or_a_program(tmp_path: Path) -> None:
    version = run(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("callbridge ")
    plugins = run(tmp_path, "callbridge", "plugins", "--json")
    assert plugins.returncode == 0 and '"name": "salesforce"' in plugins.stdout
    shell = run(tmp_path, "sh", "-c", "echo from-sh")
    assert shell.stdout == "from-sh\n"


def test_exec_keeps_the_pid_so_the_stop_signal_reaches_the_program(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [ENTRYPOINT, "sh", "-c", "echo $$"],
        env=env_of(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = process.communicate(timeout=30)
    assert int(out) == process.pid


@pytest.mark.slow
def test_no_arguments_serve_healthcheck_and_sigterm(tmp_path: Path) -> None:
    service = Service(tmp_path / "data")
    service.executable = ENTRYPOINT
    service.env = {**service_env(tmp_path / "data"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    service.env["CALLBRIDGE_SERVER__PORT"] = str(service.port)
    # Service.start passes "serve --host --port"; the image's CMD is "serve" alone: both end
    # in callbridge serve, and the health check reads the port from the environment.
    service.start()
    try:
        assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
        check = run(tmp_path, "healthcheck", CALLBRIDGE_SERVER__PORT=str(service.port))
        assert check.returncode == 0, check.stderr
    finally:
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        code = service.process.wait(30)
    assert code == 0, service.output()
    down = run(tmp_path, "healthcheck", CALLBRIDGE_SERVER__PORT=str(service.port))
    assert down.returncode == 1 and "healthcheck:" in down.stderr
    assert INGRESS_TOKEN not in service.output()
