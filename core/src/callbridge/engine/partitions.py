"""Partitions of a shared journal's events, and one tracker per partition a worker holds.

The partition of an event is a stable hash (CRC-32, the same in every process) of what ties
it to a call, so that every event of a call, and of every leg of a group call, lands in one
partition and is handled by one worker, in order:

- a call event with a ``group``: company and group. The legs of a group call are separate
  user calls that share company, group and caller (``tracker_leg.GroupKey``); the caller's
  number cannot be read reliably from every event (``number``/``ext`` swap meaning), the
  group can (the document puts it on every event of 16-21), so all calls to one group go to
  one partition;
- any other call event: company and user call id (what the call key holds);
- a device event: company and device; anything else: partition 0.

``PartitionedTracker`` holds one ``Tracker`` per partition this worker owns, so a partition
taken over starts from what the journal holds (its open calls) and one given up leaves
nothing behind that could still expire or settle here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from datetime import datetime

from ..models import Call
from ..voispeed.events import AnyEvent, CallEvent, DeviceEvent
from .tracker import Change, Tracker, call_key
from .tracker_users import user_key

_SEP = "\x1f"
#: Login events kept to teach a tracker made later (users' extensions; see tracker_users).
_MAX_DEVICE_EVENTS = 100_000


def partition_key(company_id: str | None, group: str | None, user_call_id: str) -> str:
    """What decides a call's partition (see the module docstring)."""
    if group:
        return _SEP.join((company_id or "", "group", group))
    return _SEP.join((company_id or "", user_call_id))


def partition_of(key: str, partitions: int) -> int:
    """The partition of a key: the same in every process (not Python's salted ``hash``)."""
    return zlib.crc32(key.encode()) % partitions


def event_partition(event: AnyEvent | CallEvent, partitions: int) -> int:
    """The partition an event is handled in."""
    if isinstance(event, CallEvent):
        return partition_of(partition_key(event.company_id, event.group, event.call_id), partitions)
    if isinstance(event, DeviceEvent):
        key = _SEP.join((event.company_id or "", "device", event.device_id))
        return partition_of(key, partitions)
    return 0


def call_partition(call: Call, partitions: int) -> int:
    """The partition of a saved call: the one its events went to."""
    return partition_of(partition_key(call.company_id, call.group, call.user_call_id), partitions)


class PartitionedTracker:
    """The ``Tracker`` interface the reactions use, one real tracker per owned partition.

    Not locked itself: the reactions' tracker lock guards every use, as for one tracker.
    """

    def __init__(self, make: Callable[[], Tracker], partitions: int) -> None:
        self._make = make
        self.partitions = partitions
        self._trackers: dict[int, Tracker] = {}
        self._logins: dict[str, DeviceEvent] = {}
        #: The tracker and user call of the last ``apply``: ``key_for`` follows it at once.
        self._last: tuple[str | None, str, Tracker] | None = None

    def owned(self) -> frozenset[int]:
        """The partitions with a tracker here."""
        return frozenset(self._trackers)

    def add(self, partition: int, calls: Iterable[Call]) -> None:
        """Own ``partition``: a fresh tracker with its open ``calls`` and what logins taught."""
        tracker = self._make()
        for login in self._logins.values():
            tracker.learn_device(login)
        tracker.restore(calls)
        self._trackers[partition] = tracker

    def drop(self, partition: int) -> None:
        """Forget a partition given up or lost: its next owner has the journal's state."""
        self._trackers.pop(partition, None)

    def apply(self, event: CallEvent, at: datetime) -> list[Change]:
        """The owning tracker's changes; none when the partition was lost meanwhile."""
        tracker = self._trackers.get(event_partition(event, self.partitions))
        if tracker is None:
            return []
        self._last = (event.company_id, event.call_id, tracker)
        return tracker.apply(event, at)

    def key_for(self, company_id: str | None, user_call_id: str, company: str | None = None) -> str:
        last = self._last
        if last is not None and last[:2] == (company_id, user_call_id):
            return last[2].key_for(company_id, user_call_id, company)
        for tracker in self._trackers.values():
            key = tracker.key_for(company_id, user_call_id, company)
            if key != call_key(company_id, user_call_id, company):
                return key
        return call_key(company_id, user_call_id, company)

    def learn_device(self, event: DeviceEvent) -> None:
        """Every worker learns every login: any partition's calls may need the extension."""
        if event.user_id:
            self._logins.pop(user_key(event.user_id), None)
            self._logins[user_key(event.user_id)] = event
            while len(self._logins) > _MAX_DEVICE_EVENTS:
                self._logins.pop(next(iter(self._logins)))
        for tracker in self._trackers.values():
            tracker.learn_device(event)

    def tick(self, now: datetime) -> list[Change]:
        changes: list[Change] = []
        for tracker in self._trackers.values():
            changes += tracker.tick(now)
        return changes

    def restore(self, calls: Iterable[Call]) -> None:
        """Open calls of owned partitions go to their trackers; others are not ours."""
        for call in calls:
            tracker = self._trackers.get(call_partition(call, self.partitions))
            if tracker is not None:
                tracker.restore([call])

    def get(self, key: str) -> Call | None:
        for tracker in self._trackers.values():
            found = tracker.get(key)
            if found is not None:
                return found
        return None

    def open_calls(self) -> list[Call]:
        return [call for t in self._trackers.values() for call in t.open_calls()]
