"""The ``console`` plugin: one readable line per pop and per finished call.

It is what you see when nothing else is configured: a first run, the demo, a developer
checking that events arrive. It declares ``fallback = True``, so the manager keeps it active
only while no other plugin writes activities (the local directory does not count);
``CALLBRIDGE_CONSOLE_ENABLED=true`` keeps it on regardless, ``false`` turns it off.

Like every connector it honours the record's idempotency key: a delivery is retried after a
crash or when its outcome could not be recorded, and a call must not be "logged" twice. A
CRM connector asks the CRM whether the activity exists; a stream cannot be asked, so the
console keeps the keys it printed in a small file beside the journal
(``console-logged.txt``, the last ``_LEDGER_KEEP`` keys: a retry comes minutes after the
first attempt, not weeks).
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.text import Text

from ...hookspecs import hookimpl
from ...models import ActivityRef, Call, CallRecord, CallState, Contact, ScreenPop
from ..base import PluginSettings

if TYPE_CHECKING:
    from ...settings import Settings

#: Keys of printed calls the ledger keeps (the file is cut back to them when it doubles).
_LEDGER_KEEP = 10_000
LEDGER_NAME = "console-logged.txt"

_STATE_STYLE = {
    CallState.RINGING: "bold yellow",
    CallState.ANSWERED: "bold green",
    CallState.ENDED: "bold blue",
}


class ConsoleSettings(PluginSettings):
    """``CALLBRIDGE_CONSOLE_*``."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_CONSOLE_", populate_by_name=True)

    #: Force the printer on (``true``) or off (``false``); unset: only when nothing else logs.
    enabled: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("CALLBRIDGE_CONSOLE_ENABLED", "CALLBRIDGE_CONSOLE__ENABLED"),
    )
    #: ``stderr``, ``stdout`` or the path of a file to append to.
    stream: str = "stderr"
    #: Colours and styles (off by default for files and pipes, as rich decides).
    color: bool | None = None

    @field_validator("stream")
    @classmethod
    def _check_stream(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("must be stderr, stdout or a file path")
        return text


def _clock(when: datetime | None) -> str:
    return when.astimezone().strftime("%H:%M:%S") if when else "--:--:--"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(max(seconds, 0), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _who(call: Call) -> str:
    remote = call.remote_e164 or call.remote_number or "unknown number"
    local = f"ext {call.extension}" if call.extension else (call.user_id or "?")
    arrow = "->" if call.direction.value != "outbound" else "<-"
    return f"{remote} {arrow} {local}"


def _contact_text(contacts: dict[str, Contact]) -> str:
    parts = []
    for connector, contact in contacts.items():
        label = contact.name + (f" ({contact.company})" if contact.company else "")
        if contact.ambiguous:
            label = f"{len(contact.candidates)} matches, e.g. {label}"
        parts.append(f"{label} [{connector}]")
    return "; ".join(parts) if parts else "no contact found"


class ConsolePlugin:
    """Prints pops and activities; log_call "writes" the activity to the console."""

    name = "console"
    settings_class = ConsoleSettings
    fallback = True

    def __init__(self, file: IO[str] | None = None) -> None:
        #: A stream given here wins over the settings (tests, embedding).
        self._given = file
        self._console: Console | None = None
        self._path: Path | None = None
        self._stream_name = "stderr"
        self._options: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        #: Idempotency keys of the calls printed (newest last), and the file that keeps them.
        self._printed: set[str] = set()
        self._printed_order: deque[str] = deque()
        self._ledger: Path | None = None
        self._ledger_lines = 0

    def configure(self, settings: ConsoleSettings | None, core: Settings | None = None) -> None:
        """Choose the stream; a file is checked now but opened on the first line.

        Opening lazily means a console that ends up disabled (another connector logs calls)
        never holds a file open. The keys of calls printed before (``core.data_dir``) are
        read back, so a call retried after a crash is not printed again.
        """
        if core is not None:
            self._load_ledger(core.data_dir / LEDGER_NAME)
        if settings is None:
            return
        if settings.color is not None:
            self._options = {"force_terminal": settings.color, "no_color": not settings.color}
        if self._given is not None or settings.stream in ("stderr", "stdout"):
            self._path = None
            self._stream_name = settings.stream
            return
        path = Path(settings.stream).expanduser()
        if not path.parent.is_dir():
            raise ValueError(f"CALLBRIDGE_CONSOLE_STREAM: no such directory: {path.parent}")
        self._path = path

    def _get_console(self) -> Console:
        if self._console is None:
            file: IO[str]
            if self._given is not None:
                file = self._given
            elif self._path is not None:
                file = self._owned = self._path.open("a", encoding="utf-8", buffering=1)
            else:
                file = sys.stdout if self._stream_name == "stdout" else sys.stderr
            self._console = Console(file=file, highlight=False, soft_wrap=True, **self._options)
        return self._console

    @hookimpl
    def shutdown(self, context: object) -> None:
        """Close the file the settings named (never stderr or stdout)."""
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = None
                self._console = None

    def _print(self, text: Text) -> None:
        with self._lock:  # hooks run in worker threads; keep lines whole
            self._get_console().print(text)

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        """``14:03:12 ringing  inbound  +390612345678 -> ext 201  Mario Rossi (Rossi Srl)``."""
        call = pop.call
        when = {
            CallState.RINGING: call.ring_at,
            CallState.ANSWERED: call.answer_at,
            CallState.ENDED: call.end_at,
        }.get(call.state)
        line = Text(f"{_clock(when)} ")
        line.append(f"{call.state.value:<8}", style=_STATE_STYLE.get(call.state, ""))
        line.append(f" {call.direction.value:<8} {_who(call)}  ")
        line.append(_contact_text(pop.contacts), style="cyan")
        self._print(line)

    def _load_ledger(self, path: Path) -> None:
        keys: deque[str] = deque(maxlen=_LEDGER_KEEP)
        lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open(encoding="utf-8") as ledger:
                for line in ledger:
                    lines += 1
                    if line.strip():
                        keys.append(line.strip())
        with self._lock:
            self._ledger, self._ledger_lines = path, lines
            self._printed_order = deque(keys)
            self._printed = set(keys)

    def _remember(self, key: str) -> None:
        """Note ``key`` as printed, in memory and (when known) in the ledger file."""
        self._printed.add(key)
        self._printed_order.append(key)
        if len(self._printed_order) > _LEDGER_KEEP:
            self._printed.discard(self._printed_order.popleft())
        if self._ledger is None:
            return
        self._ledger_lines += 1
        if self._ledger_lines > 2 * _LEDGER_KEEP:  # cut back to the newest keys
            temporary = self._ledger.with_suffix(".tmp")
            temporary.write_text("".join(f"{k}\n" for k in self._printed_order), encoding="utf-8")
            temporary.replace(self._ledger)
            self._ledger_lines = len(self._printed_order)
            return
        with self._ledger.open("a", encoding="utf-8") as ledger:
            ledger.write(key + "\n")

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        """``14:05:00 logged   inbound  +39... -> ext 201  answered 2m05s, hung up by remote``.

        Printed once per idempotency key: a retry of a call already printed (a crash before
        its delivery was recorded as done) returns the same reference and prints nothing.
        """
        call = record.call
        key = record.idempotency_key(self.name)
        ref = ActivityRef(connector=self.name, record_type="console", record_id=call.key)
        with self._lock:
            if key in self._printed:
                return ref
        outcome = call.outcome.value if call.outcome else "unknown"
        line = Text(f"{_clock(call.end_at)} ")
        line.append(f"{'logged':<8}", style="bold magenta")
        line.append(f" {call.direction.value:<8} {_who(call)}  {outcome}")
        if record.duration_s:
            line.append(f" {_duration(record.duration_s)}")
        if call.hung_up_by is not None:
            line.append(f", hung up by {call.hung_up_by.value}")
        line.append("  ")
        line.append(_contact_text(record.contacts), style="cyan")
        with self._lock:  # print, then remember: a crash in between is the only way to twice
            if key in self._printed:
                return ref
            self._get_console().print(line)
            self._remember(key)
        return ref
