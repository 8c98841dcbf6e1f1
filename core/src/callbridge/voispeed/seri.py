"""VOIspeed's integration module ("SERI"): its events read as the document's, its answers read.

Current VOIspeed releases offer an integration module (Configurazione > Azienda >
Integrazione > "Generico") that calls a URL of ours with ``event_name=incoming_call&ext=...``
and takes commands at ``.../PBX/seri_endpoint.php``. The vendor document we built from does
not describe it; every name here is a default from public third-party code, a field of
``SeriSettings`` that a site can correct (docs/voispeed.md says which name came from where).

The module speaks a second dialect of the same facts, so it is translated at the door:
``to_document`` turns one SERI callback into the document's parameters (``ssn_event``,
``call_id``, ``number``/``ext`` in the document's per-event meaning, ...). Everything after
the ingress (journal, tracker, hooks, connectors, activities) is the same whichever dialect
a company uses, and an event re-read from the journal parses as it did on arrival. Every
SERI parameter is kept: under its own name, or as ``seri_<name>`` where the document uses
the name with another meaning (``ext``, ``number``).

======================  ====  ===========================================================
SERI event              core  how ``number``/``ext`` are set
======================  ====  ===========================================================
incoming_call           16    number = caller; ext = the number dialled (``called``/``did``/
                                ``to``) else the user's ext; a number dialled that is not
                                the user's ext is also the ``group`` (the module names no
                                group; legs of one group call meet by it)
outgoing_call           17    number = called party; ext = the user
call_answered           18    callee/caller: the user is the caller when ``extid`` is set
                                (a click-to-call), else the callee
call_disconnect_in      20    remote hung up (``disconnect_says = direction``: end, who
                                hung up unknown)
call_disconnect_out     21    the user hung up (idem)
lost_call               19    missed: never answered, nobody known to have hung up
cmd_failed, any other   -1    kept whole (``UnknownEvent``); cmd_failed settles the
                                click-to-call it names as ``failed``
======================  ====  ===========================================================

The user's extension always travels as ``user_extension`` (the tracker's first source for
whose leg an event is).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from defusedxml import ElementTree as SafeElementTree

from ..settings import SeriSettings
from .codes import SsnEvent
from .events import (
    HANGUP_UNKNOWN,
    SECRET_PARAMETERS,
    UNANSWERED_CLOSE,
    USER_EXTENSION,
    EventParseError,
    _collect,
)
from .ids import InvalidIdentifier, normalize_id

#: Not the document's: the ``ssn_event`` given to a SERI event that is not a call event
#: (``cmd_failed``, a name we do not know). Negative, so no document code can ever clash.
SERI_OTHER: Final = -1
#: Not the document's: marks an event that arrived in the SERI dialect.
DIALECT_PARAM: Final = "cb_dialect"
#: Not the document's: the SERI event's name, kept under a fixed name whatever
#: ``event_param`` says (``cmd_failed`` is found by it later).
EVENT_NAME_PARAM: Final = "cb_seri_event"

_DIGITS = re.compile(r"[0-9]{1,10}")


def is_seri(pairs: Iterable[tuple[str, str]], names: SeriSettings) -> bool:
    """True for a callback in the SERI dialect: it names an event and has no ``ssn_event``."""
    keys = {k for k, _ in pairs}
    return names.event_param in keys and "ssn_event" not in keys


def user_call_id(raw: str, form: str) -> str:
    """The document's 8-hex-digit user call id for a SERI ``usercallid``.

    ``decimal`` reads an integer (the monitor tables' form), ``hex`` the document's form. A
    value that is neither (a PBX that sends something else) is hashed to a stable id, so
    every event of that call still meets the others; the value itself stays in the event.
    """
    text = raw.strip()
    try:
        if form == "decimal" and _DIGITS.fullmatch(text) and int(text) <= 0xFFFFFFFF:
            return normalize_id(int(text))
        if form == "hex":
            return normalize_id(text)
    except InvalidIdentifier:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:8].upper()


def _code(name: str, names: SeriSettings) -> int:
    who = names.disconnect_says == "who_hung_up"
    codes = {
        names.incoming_call: SsnEvent.CALL_INCOMING,
        names.outgoing_call: SsnEvent.CALL_OUTGOING,
        names.call_answered: SsnEvent.CALL_ANSWERED,
        names.lost_call: SsnEvent.CALL_REJECTED,
        names.call_disconnect_in: SsnEvent.CALL_REMOTE_HANGUP,
        names.call_disconnect_out: (
            SsnEvent.CALL_LOCAL_HANGUP if who else SsnEvent.CALL_REMOTE_HANGUP
        ),
    }
    return codes.get(name, SERI_OTHER)


def to_document(
    pairs: Mapping[str, str] | Iterable[tuple[str, str]], names: SeriSettings
) -> dict[str, str]:
    """The document's parameters for one SERI callback (see the module's table).

    Raises EventParseError naming the SERI parameter when a call event has no
    ``usercallid``, or for what ``parse_event`` refuses (conflicting repeats, sizes).
    The token is dropped, as ``parse_event`` drops it.
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    # The token goes first: ours and the module's may both be there (the ingress checked).
    seri = _collect((k, v) for k, v in items if k not in SECRET_PARAMETERS)
    name = seri.get(names.event_param, "").strip()
    if not name:
        raise EventParseError(names.event_param, "missing")
    code = _code(name, names)
    doc: dict[str, str] = {
        "ssn_event": str(code),
        DIALECT_PARAM: "seri",
        EVENT_NAME_PARAM: name,
    }
    ext_id = seri.get(names.ext_id_param, "").strip()
    if ext_id:
        doc["ext_id"] = ext_id
    if code != SERI_OTHER:
        raw_id = seri.get(names.call_id_param, "").strip()
        if not raw_id:
            raise EventParseError(names.call_id_param, f"missing (event {name})")
        doc["call_id"] = user_call_id(raw_id, names.call_id_form)
        user = seri.get(names.ext_param, "").strip()
        remote = seri.get(names.number_param, "").strip()
        if user:
            doc[USER_EXTENSION] = user
        if code == SsnEvent.CALL_INCOMING:
            dialled = next((seri[p].strip() for p in names.dialled_params if seri.get(p)), "")
            doc["number"], doc["ext"] = remote, dialled or user
            if dialled and dialled != user and "group" not in seri:
                doc["group"] = dialled  # the module names no group: its number stands for it
        elif (code == SsnEvent.CALL_ANSWERED and not ext_id) or code == SsnEvent.CALL_REJECTED:
            doc["number"], doc["ext"] = user, remote  # the user is the callee
        else:
            doc["number"], doc["ext"] = remote, user
        if code == SsnEvent.CALL_REJECTED:
            doc[UNANSWERED_CLOSE] = "1"
        if code == SsnEvent.CALL_REMOTE_HANGUP and names.disconnect_says == "direction":
            doc[HANGUP_UNKNOWN] = "1"
    out = dict(seri)
    for key, value in doc.items():
        if key in out and out[key] != value:
            out[f"seri_{key}"] = out[key]
        out[key] = value
    return out


@dataclass(frozen=True)
class CommandFailure:
    """What a ``cmd_failed`` event says: which request failed, and the PBX's error."""

    external_id: str | None
    request_id: str | None
    error: str


def command_failure(params: Mapping[str, str], names: SeriSettings) -> CommandFailure | None:
    """The failure a stored SERI ``cmd_failed`` event reports, or None for any other event."""
    if params.get(DIALECT_PARAM) != "seri" or params.get(EVENT_NAME_PARAM) != names.cmd_failed:
        return None
    code = params.get(names.error_code_param, "").strip()
    message = params.get(names.error_msg_param, "").strip()
    error = " ".join(p for p in (f"[{code}]" if code else "", message) if p)
    return CommandFailure(
        external_id=(params.get("ext_id") or "").strip() or None,
        request_id=(params.get(names.request_id_param) or "").strip() or None,
        error=f"the PBX reported the command failed: {error or 'no reason given'}",
    )


class SeriAnswerError(ValueError):
    """An answer of ``seri_endpoint.php`` that is not the XML with an outcome we expect."""


@dataclass(frozen=True)
class SeriAnswer:
    """A readable answer: ``outcome`` (0 = done), ``request_id``, every other element's text."""

    outcome: str
    request_id: str | None
    values: dict[str, str]

    @property
    def ok(self) -> bool:
        """The PBX says it accepted the command."""
        return self.outcome.strip() == "0"

    @property
    def error(self) -> str:
        """The PBX's reason, from whatever elements besides the outcome it sent."""
        detail = "; ".join(f"{k}={v}" for k, v in self.values.items() if v)
        return f"outcome {self.outcome}" + (f" ({detail})" if detail else "")


def parse_answer(content: bytes, names: SeriSettings) -> SeriAnswer:
    """Read ``<...><outcome>0</outcome><request_id>..</request_id></...>``; names from settings.

    Elements are matched by local name at any depth; DTDs and entities are refused
    (defusedxml). Raises SeriAnswerError when the body is not XML or has no outcome.
    """
    text = content.strip()
    if not text:
        raise SeriAnswerError("empty answer")
    try:
        root = SafeElementTree.fromstring(text)
    except Exception as exc:  # ParseError, or defusedxml's refusals
        raise SeriAnswerError(f"not XML ({type(exc).__name__})") from None
    found: dict[str, str] = {}
    for element in root.iter():
        local = str(element.tag).rpartition("}")[2]
        if len(element) == 0 and local not in found:
            found[local] = (element.text or "").strip()
    if names.outcome_element not in found:
        raise SeriAnswerError(f"no <{names.outcome_element}> in the answer")
    outcome = found.pop(names.outcome_element)
    request_id = found.pop(names.request_id_element, None) or None
    return SeriAnswer(outcome=outcome, request_id=request_id, values=found)
