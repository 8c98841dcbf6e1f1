"""A simulated VOIspeed PBX: SOAP commands in, ssn_events out, scenarios and load on top.

Nobody on the team has a VOIspeed PBX: the simulator is how the demo shows callbridge working
and how end-to-end tests drive it. It is importable (``Simulator``) and runnable
(``callbridge sim``). See docs/simulator.md.
"""

from .emitter import EventSink, FanoutSink, HttpSink, MemorySink, PostedEvent, QueuedSink
from .engine import CallEngine, LegState, Party, SimCall, SimError, SimLeg
from .model import DEFAULT_PASSWORD, Device, Directory, Group, User, default_directory, md5_hex
from .simulator import OutboundPolicy, Simulator
from .soap_server import COMMANDS, SimSoapFault, SoapLogEntry

__all__ = [
    "COMMANDS",
    "DEFAULT_PASSWORD",
    "CallEngine",
    "Device",
    "Directory",
    "EventSink",
    "FanoutSink",
    "Group",
    "HttpSink",
    "LegState",
    "MemorySink",
    "OutboundPolicy",
    "Party",
    "PostedEvent",
    "QueuedSink",
    "SimCall",
    "SimError",
    "SimLeg",
    "SimSoapFault",
    "Simulator",
    "SoapLogEntry",
    "User",
    "default_directory",
    "md5_hex",
]
