"""Parts of the core that a plugin's end-to-end tests drive themselves, behind the test kit.

A connector's tests import only ``callbridge`` and ``callbridge.testing`` (docs/plugins.md,
"The public API"), yet an end-to-end test plays the simulator's scenarios against a live
service, reads the journal it left, runs the CLI, and loads plugins from their entry points.
These are those parts, under the names the kit promises; where they live inside the core may
change.
"""

from __future__ import annotations

from ..cli import main as cli_main
from ..journal.factory import SQLITE_FILE_NAME
from ..journal.sqlite import SqliteJournal
from ..plugins.manager import PluginInfo, Plugins, load_plugins
from ..sim import FanoutSink, HttpSink, MemorySink, Simulator
from ..sim.playback import play
from ..sim.scenarios import find_scenario

__all__ = [
    "SQLITE_FILE_NAME",
    "FanoutSink",
    "HttpSink",
    "MemorySink",
    "PluginInfo",
    "Plugins",
    "Simulator",
    "SqliteJournal",
    "cli_main",
    "find_scenario",
    "load_plugins",
    "play",
]
