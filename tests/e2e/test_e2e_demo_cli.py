"""``callbridge demo`` as a real process: ``--once`` passes on a hostile environment, and the
default mode ends cleanly (exit 0, summary printed) on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.demo.companies import companies_available, demo_scenarios
from callbridge.plugins.builtin.directory import DirectoryPlugin
from callbridge.testing import wait_until

CALLBRIDGE = Path(sys.executable).parent / "callbridge"

pytestmark = pytest.mark.slow

#: A real configuration (or a broken one) in the environment must neither break the demo nor
#: be used by it: the demo builds its own settings.
HOSTILE = {
    "CALLBRIDGE_JOURNAL": "redis://192.0.2.1:6379/0",
    "CALLBRIDGE_DATA_DIR": "/nonexistent/callbridge",
    "CALLBRIDGE_STRICT_PLUGINS": "true",
    "CALLBRIDGE_CONNECTORS": "salesforce",
    "CALLBRIDGE_DIRECTORY_ENABLED": "false",
    "CALLBRIDGE_DIRECTORY_DATABASE": "/nonexistent/directory.sqlite3",
    "CALLBRIDGE_SERVER__PORT": "not-a-port",
    "CALLBRIDGE_PBX__SOAP_URL": "http://192.0.2.1/soap",
    "CALLBRIDGE_PBX__USER": "auth-someone@elsewhere",
    "CALLBRIDGE_INGRESS_TOKEN": "short",
    "CALLBRIDGE_PLUGINS": "/nonexistent/plugin.py",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(extra)
    env["COLUMNS"] = "160"
    return env


def test_demo_once_exits_0_whatever_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CALLBRIDGE_LOG_LEVEL=NOPE\nCALLBRIDGE_DEFAULT_REGION=XX\n")
    done = subprocess.run(
        [str(CALLBRIDGE), "demo", "--once", "--plain", "--speed", "6"],
        cwd=tmp_path,
        env=_env(**HOSTILE),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    count = len(demo_scenarios(2 if companies_available() else 1))
    assert f"All {count} scenarios wrote exactly the expected activities." in done.stdout
    assert "/agent#extension=201&token=demo-api-" in done.stdout
    assert "deliveries dead" in done.stdout
    assert "Traceback" not in done.stderr


def _activities(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        return len(DirectoryPlugin.open(path).list_activities(10))
    except Exception:  # the demo may still be creating the file
        return 0


def test_demo_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = subprocess.Popen(
        [str(CALLBRIDGE), "demo", "--plain", "--speed", "4", "--data-dir", str(data)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def logged() -> int:
            assert process.poll() is None, process.communicate()
            return _activities(data / "directory.sqlite3")

        wait_until(logged, "an activity", timeout=90, interval=0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out + err
    assert "Stopping" in out
    assert "callbridge demo: summary" in out
    assert "Traceback" not in err
