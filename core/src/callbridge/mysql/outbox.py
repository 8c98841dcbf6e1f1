"""Rows of ``callbridge_outbox``: reading one and decoding its parameters.

Kept apart from the source's polling loop (``source``) because the HTTP ingress reads single
rows too (sys_exec mode), and the decoding is where malformed rows are caught.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..voispeed.codes import SsnEvent, ssn_event_of
from ..voispeed.events import UNANSWERED_CLOSE

_SELECT = "SELECT `id`, `ssn_event`, `params`, `origin`, `created_at` FROM `callbridge_outbox`"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One row of ``callbridge_outbox``."""

    id: int
    ssn_event: int
    params: str
    origin: str = ""
    created_at: datetime | None = None


class MalformedRow(ValueError):
    """An outbox row whose parameters are not a JSON object of scalar values."""


def decode_params(row: OutboxRow) -> dict[str, str]:
    """The row's event parameters as text; JSON nulls (absent columns) are left out."""
    try:
        data = json.loads(row.params)
    except (TypeError, ValueError) as exc:
        raise MalformedRow(f"params is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRow("params is not a JSON object")
    params: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "1" if value else "0"
        elif isinstance(value, str | int | float):
            params[key] = str(value)
        else:
            raise MalformedRow(f"parameter {key[:40]!r} is not a scalar")
    params.setdefault("ssn_event", str(row.ssn_event))
    if ssn_event_of(params["ssn_event"]) is SsnEvent.CALL_REJECTED:
        # The triggers send 19 for a user call that closed without being active: the tables
        # cannot say whether the user rejected it or the caller gave up (docs/mysql.md).
        params[UNANSWERED_CLOSE] = "1"
    return params


def _row(values: Sequence[Any]) -> OutboxRow:
    return OutboxRow(
        id=int(values[0]),
        ssn_event=int(values[1]),
        params=values[2] if isinstance(values[2], str) else bytes(values[2]).decode(),
        origin=values[3] or "",
        created_at=values[4],
    )


def fetch_outbox_row(conn: Any, outbox_id: int, *, wait: float = 0.0) -> OutboxRow | None:
    """The outbox row ``outbox_id``, or None; for the HTTP ingress in sys_exec mode.

    ``conn`` is an autocommit PyMySQL connection (``parse_dsn(url).connect()``). With ``wait``
    > 0 it polls until the row is visible or ``wait`` seconds pass: the notification comes
    from inside the PBX's transaction, before the row is committed. Never wait on the request
    path: the PBX's write is blocked until curl returns. Consuming the row stays the
    source's job (a second reader would only cause harmless journal duplicates).
    """
    if not isinstance(outbox_id, int) or outbox_id < 1:
        raise ValueError("outbox_id must be a positive integer")
    deadline = time.monotonic() + wait
    while True:
        with conn.cursor() as cur:
            cur.execute(f"{_SELECT} WHERE `id` = %s", (outbox_id,))
            found = cur.fetchone()
        if found is not None:
            return _row(found)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
