"""``callbridge demo``: callbridge and its simulated PBX on embedded defaults (docs/demo.md).

``Demo`` starts the simulator, callbridge's real HTTP service and the seeded ``directory``
plugin in one process and plays the simulator's scenarios through them; ``view`` shows it
live in the terminal. Tests use ``Demo`` directly; ``ServerThread`` (``callbridge.server.thread``)
is re-exported here for them.
"""

from ..server.thread import ServerThread, bind_socket
from .feed import ActivityWritten, CallUpdate, DemoEvent, Note, ScenarioChecked, ScenarioStarted
from .runner import Demo, DemoOptions, Summary, assemble
from .settings import DEMO_AGENTS, IsolatedSettings, demo_settings

__all__ = [
    "DEMO_AGENTS",
    "ActivityWritten",
    "CallUpdate",
    "Demo",
    "DemoEvent",
    "DemoOptions",
    "IsolatedSettings",
    "Note",
    "ScenarioChecked",
    "ScenarioStarted",
    "ServerThread",
    "Summary",
    "assemble",
    "bind_socket",
    "demo_settings",
]
