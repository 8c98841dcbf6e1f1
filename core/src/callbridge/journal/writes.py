"""The rules both backends apply inside their atomic writes of originates and wrap-ups.

Each backend reads the stored JSON, asks these what to write, and writes it in the same
transaction (SQLite) or script/WATCH block (Redis), so the two backends cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..models import Originate, WrapUp
from .base import WrapUpConflictError


def next_wrapup(stored: str | None, wrapup: WrapUp) -> tuple[WrapUp, bool]:
    """What ``save_wrapup`` keeps, from the stored JSON: (the wrap-up, whether to write it).

    The next revision is written; the stored revision again with the same content is a
    repeated request (kept as it is, nothing written); anything else is a conflict. Backends
    call this inside their atomic write, so two agents' saves never both become revision n.
    """
    current = None if stored is None else WrapUp.model_validate_json(stored)
    revision = 0 if current is None else current.revision
    if wrapup.revision == revision + 1:
        return wrapup, True
    if current is not None and wrapup.revision == revision and current.same_content(wrapup):
        return current, False
    raise WrapUpConflictError(wrapup.call_key, wrapup.revision, revision)


def check_originate_changes(changes: Mapping[str, Any]) -> None:
    """Refuse changes to fields an originate does not have, or to its external id."""
    unknown = set(changes) - set(Originate.model_fields) | ({"external_id"} & set(changes))
    if unknown:
        raise ValueError(f"cannot change originate field(s): {', '.join(sorted(unknown))}")


def changed_originate(
    stored: str, only_if: Collection[str] | None, changes: Mapping[str, Any]
) -> tuple[Originate, bool]:
    """The originate after ``update_originate``'s changes, from its stored JSON, and whether
    it changed (not when its state is outside ``only_if``). Backends write it atomically."""
    current = Originate.model_validate_json(stored)
    if only_if is not None and current.state not in only_if:
        return current, False
    return Originate.model_validate({**current.model_dump(), **changes}), True
