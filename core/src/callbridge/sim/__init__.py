"""A simulated VOIspeed PBX: SOAP commands in, ssn_events out, scenarios and load on top.

Nobody on the team has a VOIspeed PBX: the simulator is how the demo shows callbridge working
and how end-to-end tests drive it. It is importable (``Simulator``) and runnable
(``callbridge sim``). See docs/simulator.md.
"""

from .emitter import Delivery, EventSink, FanoutSink, HttpSink, MemorySink, QueuedSink
from .engine import CallEngine, Leg, LegState, Party, SimCall, SimError
from .model import DEFAULT_PASSWORD, Device, Directory, Group, User, default_directory, md5_hex
from .simulator import OutboundPolicy, Simulator
from .soap_server import COMMANDS, SoapFault, SoapLogEntry

__all__ = [
    "COMMANDS",
    "DEFAULT_PASSWORD",
    "CallEngine",
    "Delivery",
    "Device",
    "Directory",
    "EventSink",
    "FanoutSink",
    "Group",
    "HttpSink",
    "Leg",
    "LegState",
    "MemorySink",
    "OutboundPolicy",
    "Party",
    "QueuedSink",
    "SimCall",
    "SimError",
    "Simulator",
    "SoapFault",
    "SoapLogEntry",
    "User",
    "default_directory",
    "md5_hex",
]
