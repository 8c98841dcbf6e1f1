"""What the end-to-end tests of this folder share beyond the kit's ``SseReader``."""

from __future__ import annotations

from callbridge.testing import SseMessage


def pops_of(messages: list[SseMessage], user_call_ids: set[str]) -> list[SseMessage]:
    """The pop messages of the given user calls, in order."""
    return [
        m
        for m in messages
        if m.event == "pop" and str(m.data["call"]["user_call_id"]) in user_call_ids
    ]
