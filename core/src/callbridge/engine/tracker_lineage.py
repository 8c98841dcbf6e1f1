"""Which call the events of a user call id go to, now that the PBX reuses ids.

Part of ``tracker.Tracker`` (called under its lock): one ``Lineage`` per user call id (and
company) holds the key of its newest call and when that call last heard an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import Call, CallState
from .tracker_leg import STARTS, Leg, generation_key, latest, split_key
from .tracker_restore import last_heard, reference


@dataclass(slots=True)
class Lineage:
    """The calls of one user call id (and company): which key its events go to now."""

    #: The newest call's key: the base key, or a generation key after the id was reused.
    key: str
    #: When the newest call last heard an event (the start of a reuse is measured from it).
    heard_at: datetime


class Lineages:
    """Base key (``call_key``) -> the newest call of that user call id."""

    def __init__(self, reuse_after: timedelta) -> None:
        self._reuse_after = reuse_after
        self._by_base: dict[str, Lineage] = {}

    def __contains__(self, base: object) -> bool:
        return base in self._by_base

    def get(self, base: str) -> Lineage | None:
        """The lineage of a base key, if any."""
        return self._by_base.get(base)

    def key_for(self, base: str) -> str:
        """The key of the newest call of ``base`` (``base`` itself until the id is reused)."""
        lineage = self._by_base.get(base)
        return base if lineage is None else lineage.key

    def route(self, base: str, code: int, at: datetime, legs: Mapping[str, Leg]) -> str:
        """The key an event of this user call id goes to: the newest call's, or a new one.

        A ring starts a new call (a generation) when the newest call has ended (or is not in
        ``legs``: forgotten, it finished long ago) and heard nothing for ``reuse_after``: the PBX
        reused the id. A repeated or late ring comes sooner and goes to the call it belongs
        to. Pure: ``apply`` asks twice (before and after the originate lookup) and must get
        the same answer.
        """
        lineage = self._by_base.get(base)
        if lineage is None:
            return base
        if code in STARTS and at - lineage.heard_at >= self._reuse_after:
            leg = legs.get(lineage.key)
            if leg is None or leg.state is CallState.ENDED:
                return generation_key(base, at)
        return lineage.key

    def heard(self, base: str, key: str, at: datetime) -> None:
        """An event of call ``key`` arrived at ``at``: it is the newest call of ``base``."""
        lineage = self._by_base.get(base)
        if lineage is None or lineage.key != key:
            self._by_base[base] = Lineage(key, at)
        else:
            lineage.heard_at = latest(lineage.heard_at, at)

    def note(self, calls: Iterable[Call]) -> None:
        """Record the newest of each user call id's calls, where nothing newer is known."""
        for call in sorted(calls, key=lambda c: (reference(c), c.key)):
            base = split_key(call.key)[0]
            lineage = self._by_base.get(base)
            if lineage is None or reference(call) >= lineage.heard_at:
                self._by_base[base] = Lineage(call.key, last_heard(call))

    def forget(self, base: str, key: str) -> None:
        """Call ``key`` is forgotten: so is its lineage, if it is still the newest."""
        lineage = self._by_base.get(base)
        if lineage is not None and lineage.key == key:
            del self._by_base[base]
