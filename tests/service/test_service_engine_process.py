"""``callbridge serve`` runs the engine in a child process; the child never outlives it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from service_support import Service, wait_until

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (any thread of it may have spawned them)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ", 1)[1][:1] not in ("Z", "X")  # a zombie has exited


def _engine_child(service: Service) -> int:
    assert service.process is not None
    found: list[int] = []

    def spawned() -> bool:
        found[:] = [
            pid
            for pid in _children(service.process.pid)  # type: ignore[union-attr]
            if b"engine" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return bool(found)

    wait_until(spawned, "the engine child process")
    return found[0]


def test_engine_runs_apart_and_exits_when_serve_is_killed(tmp_path: Path) -> None:
    service = Service(tmp_path / "data").start()
    try:
        child = _engine_child(service)
        assert child != service.process.pid  # type: ignore[union-attr]
        service.kill()  # kill -9: no chance to stop the child politely
        wait_until(lambda: not _alive(child), "the engine to exit after its parent died", 30)
        assert "the server process is gone" in service.output()
    finally:
        service.kill()


def test_engine_stops_with_serve_on_ctrl_c(tmp_path: Path) -> None:
    service = Service(tmp_path / "data").start()
    try:
        child = _engine_child(service)
        assert service.stop() == 0
        wait_until(lambda: not _alive(child), "the engine to exit with serve", 30)
        assert "engine stopped" in service.output()
    finally:
        service.kill()


def test_thread_mode_runs_no_child(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", CALLBRIDGE_SERVER__ENGINE="thread").start()
    try:
        assert service.process is not None
        kids = [
            pid
            for pid in _children(service.process.pid)
            if b"engine" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert kids == []
    finally:
        service.stop()


def test_engine_child_runs_at_a_lower_cpu_priority(tmp_path: Path) -> None:
    """The PBX's acks get the processor first: the engine is ``engine_nice`` steps nicer."""
    service = Service(tmp_path / "data", CALLBRIDGE_SERVER__ENGINE_NICE="7").start()
    try:
        child = _engine_child(service)
        parent = service.process.pid  # type: ignore[union-attr]
        wait_until(
            lambda: (
                os.getpriority(os.PRIO_PROCESS, child)
                == os.getpriority(os.PRIO_PROCESS, parent) + 7
            ),
            "the engine to lower its priority",
        )
    finally:
        service.kill()
