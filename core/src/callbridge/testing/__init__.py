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
    from .fake_http import (
        CrmRefusal,
        FakeAnswer,
        FakeCrm,
        FakeHttpService,
        FakeRequest,
        Fault,
        QuietHandler,
    )
    from .live import LiveService, ServerThread, SseMessage, SseReader, bind_socket, pops_of
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
    from .pbx import API_TOKEN, INGRESS_TOKEN, PBX_AGENTS, LivePbx, PlacedCall
    from .plugins import make_plugins
    from .recorder import RecordingCrm
    from .records import make_call, make_record, shifted_record
    from .scenarios import ScenarioResult, ScenarioRunner
    from .services import require
    from .tls import LocalCa
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
    "CrmRefusal": "fake_http",
    "FakeAnswer": "fake_http",
    "FakeCrm": "fake_http",
    "FakeRequest": "fake_http",
    "Fault": "fake_http",
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
    "LocalCa": "tls",
    "SseMessage": "live",
    "SseReader": "live",
    "pops_of": "live",
    "API_TOKEN": "pbx",
    "INGRESS_TOKEN": "pbx",
    "PBX_AGENTS": "pbx",
    "LivePbx": "pbx",
    "PlacedCall": "pbx",
    "make_plugins": "plugins",
    "RecordingCrm": "recorder",
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
    "API_TOKEN",
    "INGRESS_TOKEN",
    "PBX_AGENTS",
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
    "Fault",
    "HttpSink",
    "LivePbx",
    "LiveService",
    "LoadedConnector",
    "LocalCa",
    "MemorySink",
    "PlacedCall",
    "PluginInfo",
    "Plugins",
    "QuietHandler",
    "RecordingCrm",
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
    "pops_of",
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
