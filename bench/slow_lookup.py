"""Benchmark plugin: a CRM lookup that takes 100 ms (loaded with CALLBRIDGE_PLUGINS)."""

from __future__ import annotations

import time

from callbridge import Call, Contact, hookimpl

name = "slowcrm"
LOOKUP_SECONDS = 0.100


@hookimpl
def lookup_contact(number: str, call: Call) -> Contact | None:
    """Pretend to ask a CRM: 100 ms, then a contact."""
    time.sleep(LOOKUP_SECONDS)
    return Contact(record_id=number[-6:], name=f"Caller {number[-4:]}", record_type="Contact")
