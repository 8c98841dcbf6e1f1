"""The device each agent logged in last (event 1), where both processes can read it.

CallReq may name the device to ring (``call_req_device_id``). The engine sees the PBX's
login (1) and logout (2) events; the HTTP service places the calls. The journal is the one
store both share (SQLite file or Redis), and its named cursors are a small key -> integer
table: ``device:<extension>`` holds the device id plus one (0: none known). A logout of that
device clears it; a logout of another device of the agent leaves it. Nothing else is kept.
"""

from __future__ import annotations

from ..companies.registry import agent_key
from ..journal.base import Journal
from ..voispeed.events import DeviceEvent, DeviceLogin, DeviceLogout
from ..voispeed.ids import InvalidIdentifier, normalize_id

_PREFIX = "device:"


def _name(extension: str) -> str:
    return _PREFIX + extension.strip()


def remember_device(journal: Journal, event: DeviceEvent) -> None:
    """Record a login (1) as the agent's device; forget it on its logout (2)."""
    if not event.number:
        return
    try:
        value = int(normalize_id(event.device_id), 16) + 1
    except InvalidIdentifier:
        return
    name = _name(agent_key(event.company or "default", event.number))
    if isinstance(event, DeviceLogin):
        journal.set_cursor(name, value)
    elif isinstance(event, DeviceLogout) and journal.get_cursor(name) == value:
        journal.set_cursor(name, 0)


def learnt_device(journal: Journal, extension: str) -> str | None:
    """The device the agent with this extension logged in last, or None."""
    value = journal.get_cursor(_name(extension))
    return normalize_id(value - 1) if value > 0 else None
