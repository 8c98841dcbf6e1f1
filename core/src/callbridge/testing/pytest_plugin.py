"""pytest plugin shipped with callbridge: fixtures for plugin authors (see docs/testing-plugins.md).

Registered through the ``pytest11`` entry point, so it is active wherever callbridge is
installed. Every fixture is opt-in by name and this module imports nothing heavy: the engine,
the server and pydantic models load only when a test asks for a fixture that needs them.

Fixtures:

- ``callbridge_env``: no ``CALLBRIDGE_*`` variable from outside, a tmp data dir, no ``.env``.
- ``clock``: a ``FakeClock`` the test moves.
- ``events``: an ``EventFactory`` (params + typed event for every ssn_event).
- ``plugin_manager``: ``plugin_manager(plugin, builtins=("directory",))`` -> ``Plugins``.
- ``scenarios``: ``scenarios(plugin).inbound_answered()`` -> ``ScenarioResult``.
- ``app_client``: ``app_client(plugin)`` -> ``AppHarness`` (``.client``, ``.send_event``).
- ``companies``: ``companies.add("acme", "1", plugins={...}); companies.write()`` -> a
  companies file with fresh tokens, named by ``CALLBRIDGE_COMPANIES_FILE``.
- ``live_pbx``: ``live_pbx(settings, plugin="acme")`` -> a started ``LivePbx`` (the
  simulator's PBX in front of a live service), stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..plugins.manager import Plugins
    from .app import AppHarness
    from .clock import FakeClock
    from .companies import CompaniesFile
    from .env import CallbridgeEnv
    from .events import EventFactory
    from .pbx import LivePbx
    from .scenarios import ScenarioRunner


@pytest.fixture
def callbridge_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CallbridgeEnv:
    """A clean ``CALLBRIDGE_*`` environment, restored after the test."""
    from .env import CallbridgeEnv

    return CallbridgeEnv(monkeypatch, tmp_path / "callbridge-env")


@pytest.fixture
def companies(callbridge_env: CallbridgeEnv, tmp_path: Path) -> CompaniesFile:
    """Companies for the test: ``add`` them, then ``write`` (sets CALLBRIDGE_COMPANIES_FILE)."""
    from .companies import CompaniesFile

    return CompaniesFile(callbridge_env, tmp_path / "companies.toml")


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says (starts 2025-01-15 09:00 UTC)."""
    from .clock import FakeClock

    return FakeClock()


@pytest.fixture
def events() -> EventFactory:
    """Builds PBX events: ``events.incoming()`` -> ``BuiltEvent(params, event)``."""
    from .events import EventFactory

    return EventFactory()


@pytest.fixture
def plugin_manager(callbridge_env: CallbridgeEnv) -> Callable[..., Plugins]:
    """``plugin_manager(*plugins, builtins=())``: the plugin(s) under test, nothing else."""
    from .plugins import make_plugins

    def factory(*plugins: object, builtins: Sequence[str] = (), **kwargs: Any) -> Plugins:
        return make_plugins(*plugins, builtins=builtins, **kwargs)

    return factory


@pytest.fixture
def scenarios(
    callbridge_env: CallbridgeEnv, tmp_path: Path, clock: FakeClock, events: EventFactory
) -> Iterator[Callable[..., ScenarioRunner]]:
    """``scenarios(*plugins, builtins=())`` -> a ScenarioRunner on a real engine and journal."""
    from .scenarios import ScenarioRunner

    runners: list[ScenarioRunner] = []

    def factory(*plugins: object, builtins: Sequence[str] = (), **kwargs: Any) -> ScenarioRunner:
        folder = tmp_path / f"scenarios-{len(runners)}"
        folder.mkdir()
        runner = ScenarioRunner(
            plugins, folder, clock=clock, events=events, builtins=builtins, **kwargs
        )
        runners.append(runner)
        return runner

    yield factory
    for runner in runners:
        runner.close()


@pytest.fixture
def app_client(
    callbridge_env: CallbridgeEnv, tmp_path: Path
) -> Iterator[Callable[..., AppHarness]]:
    """``app_client(*plugins, builtins=(), extensions="*")`` -> a running app and its tokens."""
    from .app import AppHarness

    apps: list[AppHarness] = []

    def factory(*plugins: object, **kwargs: Any) -> AppHarness:
        folder = tmp_path / f"app-{len(apps)}"
        folder.mkdir()
        harness = AppHarness(plugins, folder, **kwargs)
        apps.append(harness)
        return harness

    yield factory
    for harness in apps:
        harness.close()


@pytest.fixture
def live_pbx(callbridge_env: CallbridgeEnv) -> Iterator[Callable[..., LivePbx]]:
    """``live_pbx(settings=None, *, plugin=None)`` -> a started ``LivePbx``: the simulator's
    SOAP server and events in front of callbridge as ``callbridge serve`` runs it."""
    from .pbx import LivePbx

    started: list[LivePbx] = []

    def factory(settings: dict[str, Any] | None = None, **kwargs: Any) -> LivePbx:
        pbx = LivePbx(callbridge_env, settings, **kwargs).start()
        started.append(pbx)
        return pbx

    yield factory
    for pbx in reversed(started):
        pbx.stop()
