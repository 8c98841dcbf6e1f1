"""``make test`` on a machine without MariaDB, Redis or Chromium ends with one line saying so.

The run is real: pytest in a subprocess whose ``PATH`` holds only the virtual environment's
``bin``, so ``mariadbd``, ``redis-server`` and ``chromium`` are not found, on test files that
need each of them. ``make services`` is checked with ``apt-get`` replaced by ``echo``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.testing.services import SERVICES, summary_line

ROOT = Path(__file__).resolve().parents[2]
#: One file per service; nothing in them skips for another reason.
NEEDING = {
    "mariadb": "tests/mysql/test_sink.py",
    "redis": "tests/journal_redis/test_redis_journal.py",
    "chromium": "tests/panel/test_panel_call_controls.py",
}


def _pytest_without_services(*files: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["PATH"] = str(Path(sys.executable).parent)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_the_run_ends_with_the_missing_services_and_the_command() -> None:
    done = _pytest_without_services(*NEEDING.values())
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    stats = re.search(r"(\d+) passed, (\d+) skipped", output)
    assert stats is not None, output
    skipped = int(stats.group(2))
    assert skipped > 0
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{skipped} tests skipped because MariaDB (mariadbd, ")
    assert "Redis (redis-server) and Chromium (chromium) are not installed" in last
    assert "run `make services` (Debian/Ubuntu: apt-get install" in last
    assert "elsewhere install them with your package manager" in last


@pytest.mark.slow
def test_only_the_missing_service_is_named() -> None:
    done = _pytest_without_services(NEEDING["redis"])
    last = done.stdout.strip().splitlines()[-1]
    assert "skipped because Redis (redis-server) is not installed" in last, done.stdout
    assert "MariaDB" not in last and "Chromium" not in last


def test_the_line_counts_tests_per_service() -> None:
    line = summary_line({"chromium": 1})
    assert line.startswith("1 test skipped because Chromium (chromium) is not installed: ")
    assert summary_line({"mariadb": 2, "redis": 3}).startswith("5 tests skipped because MariaDB")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [make, "--no-print-directory", "-s", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_services_lists_every_service_package() -> None:
    done = _make("--eval", "print-packages: ; @echo $(DEBIAN_PACKAGES)", "print-packages")
    assert done.returncode == 0, done.stderr
    packages = done.stdout.split()
    for service in SERVICES.values():
        assert set(service.debian_package.split()) <= set(packages)


def test_make_services_installs_only_what_dpkg_lacks() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian/Ubuntu system")
    done = _make(
        "services",
        "DEBIAN_PACKAGES=dpkg callbridge-no-such-package",
        "APT_GET=echo apt-get",
        "SUDO=",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "apt-get update -qq" in lines
    assert "apt-get install -y -qq --no-install-recommends callbridge-no-such-package" in lines
