"""Test kit for callbridge plugins: fixtures, an event factory, scenarios, ``ConnectorTests``.

The fixtures come with the pytest plugin (``callbridge.testing.pytest_plugin``), active as
soon as callbridge is installed. The names below are for direct use; they are imported on
first access, so ``import callbridge.testing`` stays cheap.

See docs/testing-plugins.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import AppHarness
    from .clock import FakeClock
    from .companies import CompaniesFile, TestCompany
    from .connector import ConnectorTests, FailureKind, LoadedConnector, overrides_standard_test
    from .env import CallbridgeEnv
    from .events import REMOTE, REMOTE_E164, BuiltEvent, EventFactory
    from .fake_crm import CrmRefusal, FakeAnswer, FakeCrm, FakeRequest
    from .fake_http import FakeHttpService, QuietHandler
    from .live import LiveService, ServerThread, SseMessage, SseReader, bind_socket
    from .parts import (
        SQLITE_FILE_NAME,
        FanoutSink,
        HttpSink,
        MemorySink,
        PluginInfo,
        Plugins,
        Simulator,
        SqliteJournal,
        cli_main,
        find_scenario,
        load_plugins,
        play,
    )
    from .plugins import make_plugins
    from .records import make_call, make_record, shifted_record
    from .scenarios import ScenarioResult, ScenarioRunner
    from .services import require
    from .variables import Variable, variables
    from .wait import wait_until

_EXPORTS = {
    "AppHarness": "app",
    "FakeClock": "clock",
    "CompaniesFile": "companies",
    "TestCompany": "companies",
    "ConnectorTests": "connector",
    "FailureKind": "connector",
    "LoadedConnector": "connector",
    "overrides_standard_test": "connector",
    "CallbridgeEnv": "env",
    "REMOTE": "events",
    "REMOTE_E164": "events",
    "BuiltEvent": "events",
    "EventFactory": "events",
    "CrmRefusal": "fake_crm",
    "FakeAnswer": "fake_crm",
    "FakeCrm": "fake_crm",
    "FakeRequest": "fake_crm",
    "FakeHttpService": "fake_http",
    "QuietHandler": "fake_http",
    "LiveService": "live",
    "ServerThread": "live",
    "bind_socket": "live",
    "SQLITE_FILE_NAME": "parts",
    "FanoutSink": "parts",
    "HttpSink": "parts",
    "MemorySink": "parts",
    "PluginInfo": "parts",
    "Plugins": "parts",
    "Simulator": "parts",
    "SqliteJournal": "parts",
    "cli_main": "parts",
    "find_scenario": "parts",
    "load_plugins": "parts",
    "play": "parts",
    "require": "services",
    "SseMessage": "live",
    "SseReader": "live",
    "make_plugins": "plugins",
    "make_call": "records",
    "make_record": "records",
    "shifted_record": "records",
    "ScenarioResult": "scenarios",
    "ScenarioRunner": "scenarios",
    "Variable": "variables",
    "variables": "variables",
    "wait_until": "wait",
}

__all__ = [
    "REMOTE",
    "REMOTE_E164",
    "SQLITE_FILE_NAME",
    "AppHarness",
    "BuiltEvent",
    "CallbridgeEnv",
    "CompaniesFile",
    "ConnectorTests",
    "CrmRefusal",
    "EventFactory",
    "FailureKind",
    "FakeAnswer",
    "FakeClock",
    "FakeCrm",
    "FakeHttpService",
    "FakeRequest",
    "FanoutSink",
    "HttpSink",
    "LiveService",
    "LoadedConnector",
    "MemorySink",
    "PluginInfo",
    "Plugins",
    "QuietHandler",
    "ScenarioResult",
    "ScenarioRunner",
    "ServerThread",
    "Simulator",
    "SqliteJournal",
    "SseMessage",
    "SseReader",
    "TestCompany",
    "Variable",
    "bind_socket",
    "cli_main",
    "find_scenario",
    "load_plugins",
    "make_call",
    "make_plugins",
    "make_record",
    "overrides_standard_test",
    "play",
    "require",
    "shifted_record",
    "variables",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
