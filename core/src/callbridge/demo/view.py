"""The demo in the terminal: a live table of calls (rich ``Live``) or plain lines.

``LiveView`` keeps one row per call (by call key): who rang whom, the contact callbridge
found, the state as pops arrive (ringing, answered, ended with its outcome) and the activity
the directory wrote. Above it, the agent panel's URL; below, the scenario being played and
the checks so far. ``LineView`` prints one line per fact instead, for logs, CI and terminals
that are not interactive. Both are fed by ``Demo.subscribe`` from several threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .feed import ActivityWritten, CallUpdate, DemoEvent, Note, ScenarioChecked, ScenarioStarted
from .options import Summary

_MAX_ROWS = 14
_STATE_STYLE = {"ringing": "bold yellow", "answered": "bold green", "ended": "dim"}
_ARROW = {"inbound": "←", "outbound": "→", "internal": "↔"}
_OUTCOME_STYLE = {"answered": "green", "missed": "red", "rejected": "magenta"}


def _who(update: CallUpdate) -> Text:
    if update.contact:
        text = Text(update.contact, style="bold")
        if update.company:
            text.append(f"\n{update.company}", style="dim")
        return text
    if update.ambiguous:
        return Text(f"{update.ambiguous} contacts share this number", style="yellow")
    if update.direction == "internal":
        return Text("a colleague", style="dim")
    return Text("not in the directory", style="dim")


@dataclass
class _Row:
    update: CallUpdate
    activity: ActivityWritten | None = None


class LiveView:
    """A rich ``Live`` table of the calls; use as a context manager around the demo."""

    def __init__(self, console: Console, panel_url: str, title: str = "callbridge demo") -> None:
        self.console = console
        self.panel_url = panel_url
        self.title = title
        self._rows: OrderedDict[str, _Row] = OrderedDict()
        self._lock = threading.Lock()
        self._scenario = ""
        self._checks: list[ScenarioChecked] = []
        self._notes: list[str] = []
        self._live = Live(
            get_renderable=self.render,
            console=console,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __call__(self, event: DemoEvent) -> None:
        """Take one fact from the demo (any thread)."""
        with self._lock:
            if isinstance(event, CallUpdate):
                row = self._rows.get(event.key)
                if row is None:
                    self._rows[event.key] = _Row(event)
                    while len(self._rows) > _MAX_ROWS:
                        self._rows.popitem(last=False)
                else:
                    row.update = event
            elif isinstance(event, ActivityWritten):
                row = self._rows.get(event.key)
                if row is not None:
                    row.activity = event
            elif isinstance(event, ScenarioStarted):
                self._scenario = f"{event.name}: {event.summary}"
            elif isinstance(event, ScenarioChecked):
                self._checks.append(event)
                if event.problems:
                    self._notes.append(f"{event.name}: " + "; ".join(event.problems))
            elif isinstance(event, Note):
                self._notes.append(event.text)
            self._notes = self._notes[-3:]

    def render(self) -> RenderableType:
        """The whole screen, from the current state."""
        with self._lock:
            rows = [replace(row) for row in self._rows.values()]
            scenario, checks, notes = self._scenario, list(self._checks), list(self._notes)
        table = Table(expand=True, show_lines=False, header_style="bold")
        table.add_column("time", no_wrap=True, min_width=8)
        table.add_column("ext", no_wrap=True)
        table.add_column("call", no_wrap=True)
        table.add_column("contact", ratio=2, min_width=16)
        table.add_column("state", no_wrap=True, min_width=8)
        table.add_column("activity", ratio=1, min_width=10)
        for row in rows:
            update = row.update
            state = Text(update.state, style=_STATE_STYLE.get(update.state, ""))
            if update.outcome:
                state.append(f"\n{update.outcome}", style=_OUTCOME_STYLE.get(update.outcome, ""))
            if row.activity is not None:
                activity = Text(f"#{row.activity.activity_id}", "green")
                if row.activity.contact:
                    activity.append(f" {row.activity.contact}")
            elif update.state == "ended":
                activity = Text("…", style="dim")
            else:
                activity = Text("")
            group = f"\n{update.group}" if update.group else ""
            table.add_row(
                update.at.astimezone().strftime("%H:%M:%S"),
                update.extension + group,
                f"{_ARROW.get(update.direction, '')} {update.number}",
                _who(update),
                state,
                activity,
            )
        passed = sum(1 for c in checks if c.ok)
        footer = Text()
        footer.append("playing ", style="dim")
        footer.append(scenario or "…")
        footer.append(f"\nscenarios checked: {passed}/{len(checks)} as expected", style="dim")
        for note in notes:
            footer.append(f"\n{note}", style="cyan")
        # The full URL (with its token) is printed once above the live region, where it is
        # never wrapped: inside this box rich would cut it across lines and it could not be
        # copied. Here only its token-free part, which always fits.
        header = Text.assemble(
            ("Agent panel: ", "bold"),
            (self.panel_url.partition("#")[0], "cyan"),
            (" (the link to open, with its token, is printed above)", "dim"),
            ("\nCtrl-C stops.", "dim"),
        )
        return Panel(Group(header, table, footer), title=self.title, border_style="blue")

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()


class LineView:
    """One printed line per fact (not an interactive terminal, or ``--plain``)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()

    def __call__(self, event: DemoEvent) -> None:
        """Print ``event`` as one line."""
        line = describe(event)
        with self._lock:
            self.console.print(line, highlight=False, soft_wrap=True)

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def describe(event: DemoEvent) -> str:
    """A one-line, plain-text account of ``event``."""
    at = event.at.astimezone().strftime("%H:%M:%S")
    if isinstance(event, CallUpdate):
        who = event.contact or (
            f"{event.ambiguous} contacts"
            if event.ambiguous
            else ("a colleague" if event.direction == "internal" else "not in the directory")
        )
        outcome = f" ({event.outcome})" if event.outcome else ""
        group = f" via {event.group}" if event.group else ""
        return (
            f"{at} pop       {event.extension}{group} {event.direction} {event.number} "
            f"{who}: {event.state}{outcome}"
        )
    if isinstance(event, ActivityWritten):
        contact = f" on {event.contact}" if event.contact else ""
        return (
            f"{at} activity  {event.plugin} #{event.activity_id}: {event.extension} "
            f"{event.direction} {event.outcome} {event.number}{contact}"
        )
    if isinstance(event, ScenarioStarted):
        return f"{at} scenario  {event.name} (round {event.round}): {event.summary}"
    if isinstance(event, ScenarioChecked):
        if event.ok:
            return f"{at} check     {event.name}: every expected activity written"
        return f"{at} check     {event.name}: FAILED: " + "; ".join(event.problems)
    return f"{at} note      {event.text}"


def render_summary(summary: Summary) -> Table:
    """The end-of-run table: calls, pops, activities per plugin, deliveries, checks."""
    table = Table(title="callbridge demo: summary", show_header=False, title_style="bold")
    table.add_column("what", style="bold")
    table.add_column("count")
    table.add_row("calls seen", str(summary.calls))
    table.add_row("pops sent", str(summary.pops))
    for plugin, count in sorted(summary.activities.items()):
        table.add_row(f"activities ({plugin})", str(count))
    if not summary.activities:
        table.add_row("activities", "0")
    table.add_row("deliveries pending", str(summary.pending))
    table.add_row("deliveries dead", Text(str(summary.dead), style="red" if summary.dead else ""))
    if summary.checks:
        passed = len(summary.checks) - len(summary.failed)
        style = "green" if not summary.failed else "red"
        table.add_row("scenarios as expected", Text(f"{passed}/{len(summary.checks)}", style))
    return table
