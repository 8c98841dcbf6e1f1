"""PBX user id -> extension: who a call event is about when ``ext`` is not an extension.

The document says event 16's ``ext`` is the *number called*. For a direct call that is the
user's extension; for a call to a group or a DID it is the group's number or the DID, and the
member whose phone rings is only named by ``sender_id`` (the user). Taking ``ext`` as the
extension would pop the call on stream "600" and map it to no CRM owner. So the tracker asks
for the user's extension, from (first match wins):

1. the event itself: ``user_extension``, which the MySQL source fills in from the PBX's
   ``users`` table (current, per event);
2. ``tracker.user_extensions``, ``user id=extension`` entries set by the operator;
3. what login/logout events (1, 2) taught: their ``number`` is "the extension of the user on
   whom the device logged in or out". Kept in memory only: after a restart it is learnt again
   from the next login (configure 2. or a MySQL source for a map that is there at once).

Ids are compared without leading zeros and case (``00000007`` is ``7``), since the events
and the setting may write them either way. Pure data (no I/O, no clock): the Tracker's lock
guards every use.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..voispeed.events import DeviceEvent

#: Learnt entries kept at most (a site has hundreds of users; this only bounds bad input).
_MAX_LEARNT = 100_000


def user_key(user_id: str) -> str:
    """The form ids are compared in: stripped, upper case, no leading zeros."""
    return user_id.strip().upper().lstrip("0") or "0"


def parse_user_extensions(entries: Iterable[str]) -> dict[str, str]:
    """``["7=201", ...]`` -> {user key: extension}; ValueError names a malformed entry."""
    result: dict[str, str] = {}
    for entry in entries:
        user, sep, extension = entry.partition("=")
        if not sep or not user.strip() or not extension.strip():
            raise ValueError(f"{entry!r} is not 'user id=extension'")
        result[user_key(user)] = extension.strip()
    return result


class UserMap:
    """The extension of a PBX user: configured entries first, then learnt ones."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        self._configured = parse_user_extensions(configured)
        self._learnt: dict[str, str] = {}

    def extension(self, user_id: str | None) -> str | None:
        """The user's extension, or None when nothing maps it."""
        if not user_id:
            return None
        key = user_key(user_id)
        return self._configured.get(key) or self._learnt.get(key)

    def learn(self, event: DeviceEvent) -> None:
        """Take ``user_id`` -> ``number`` from a login or logout event that carries both."""
        if not event.user_id or not event.number:
            return
        key = user_key(event.user_id)
        if key not in self._learnt and len(self._learnt) >= _MAX_LEARNT:
            self._learnt.pop(next(iter(self._learnt)))
        self._learnt[key] = event.number
