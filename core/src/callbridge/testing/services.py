"""The outside programs some tests need (MariaDB, Redis, headless Chromium): find or skip.

Those tests start their own server or browser from the installed binary. Where it is missing
they skip, with a reason that starts with ``SKIP_PREFIX`` and names the service, so a test
run can end with one line saying what was missing and how many tests that cost (the
workspace's root ``conftest.py`` prints it; ``summary_line`` words it). With
``CALLBRIDGE_TEST_REQUIRE_SERVICES=1`` (CI) a missing service fails the test instead.

Binaries are looked up on ``PATH`` and in the ``sbin`` folder beside each ``bin`` folder of
``PATH``: Debian installs ``mariadbd`` in ``/usr/sbin``, which is not on a normal user's
``PATH``. A test run whose ``PATH`` lacks a binary therefore sees it as missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

#: Set to 1 in CI: a missing service fails the tests that need it instead of skipping them.
REQUIRE_ENV = "CALLBRIDGE_TEST_REQUIRE_SERVICES"
#: Every skip for a missing service starts with this, then the service's key.
SKIP_PREFIX = "service missing: "
#: What installs them on Debian/Ubuntu (the workspace Makefile's ``services`` target).
INSTALL_COMMAND = "make services"


@dataclass(frozen=True)
class Service:
    """A program tests need: the binaries that must all be there, its Debian package."""

    key: str
    label: str
    binaries: tuple[str, ...]
    #: The Debian packages that install them (space-separated when more than one).
    debian_package: str


SERVICES: Mapping[str, Service] = {
    s.key: s
    for s in (
        Service("mariadb", "MariaDB", ("mariadbd", "mariadb-install-db"), "mariadb-server"),
        Service("redis", "Redis", ("redis-server",), "redis-server"),
        Service("chromium", "Chromium", ("chromium",), "chromium"),
        # The sys_exec trigger tests compile a small test UDF and let it run a real curl.
        Service(
            "udf",
            "the test UDF's tools",
            ("gcc", "mariadb_config", "curl"),
            "gcc libmariadb-dev curl",
        ),
    )
}


def find_binary(name: str) -> str | None:
    """``name``'s path on ``PATH`` or in an ``sbin`` beside a ``bin`` of ``PATH``; else None."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    sbins = [f[: -len("bin")] + "sbin" for f in folders if f.rstrip("/").endswith("/bin")]
    return shutil.which(name, path=os.pathsep.join([*folders, *sbins]))


def missing_binaries(key: str) -> list[str]:
    """The binaries of service ``key`` that are not installed (empty: it is usable)."""
    return [b for b in SERVICES[key].binaries if find_binary(b) is None]


def skip_reason(key: str) -> str | None:
    """None when service ``key`` is installed, else the skip reason (``SKIP_PREFIX`` ...)."""
    missing = missing_binaries(key)
    if not missing:
        return None
    service = SERVICES[key]
    return (
        f"{SKIP_PREFIX}{key}: {', '.join(missing)} not found "
        f"({INSTALL_COMMAND}, or Debian's {service.debian_package})"
    )


def require(key: str) -> str:
    """The path of service ``key``'s first binary; skips the test (fails it in CI) when any
    of its binaries is missing. Call it from a fixture or a test."""
    reason = skip_reason(key)
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} and {REQUIRE_ENV}=1")
        pytest.skip(reason)
    path = find_binary(SERVICES[key].binaries[0])
    assert path is not None
    return path


def skip_marker(key: str) -> pytest.MarkDecorator | None:
    """For ``pytest_collection_modifyitems``: None when service ``key`` is installed, else a
    skip mark (raises RuntimeError in CI, where a missing service must fail the run)."""
    reason = skip_reason(key)
    if reason is None:
        return None
    if os.environ.get(REQUIRE_ENV) == "1":
        raise RuntimeError(f"{reason} and {REQUIRE_ENV}=1")
    return pytest.mark.skip(reason=reason)


def service_of_skip(reason: str) -> str | None:
    """The service key a skip reason names (pytest may put ``Skipped: `` first), or None."""
    _, found, rest = reason.partition(SKIP_PREFIX)
    key = rest.partition(":")[0]
    return key if found and key in SERVICES else None


def summary_line(skipped: Mapping[str, int]) -> str:
    """The run's last line: which services were missing, the tests skipped, the fix."""
    services = [SERVICES[k] for k in SERVICES if skipped.get(k)]
    names = [f"{s.label} ({', '.join(s.binaries)})" for s in services]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    total = sum(skipped.get(s.key, 0) for s in services)
    tests = "test" if total == 1 else "tests"
    return (
        f"{total} {tests} skipped because {listed} "
        f"{'is' if len(names) == 1 else 'are'} not installed: run `{INSTALL_COMMAND}` "
        "(Debian/Ubuntu: apt-get install "
        + " ".join(s.debian_package for s in services)
        + "); elsewhere install them with your package manager so that "
        + ", ".join(b for s in services for b in s.binaries)
        + " are on PATH (or in an sbin beside it)."
    )
