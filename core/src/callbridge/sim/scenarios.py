"""Scenarios: small TOML files of timed steps, each declaring what it should produce.

A scenario is read with the standard library's ``tomllib``::

    name = "inbound-answered"
    description = "An external caller rings 201, who answers; the caller hangs up."

    [[step]]
    action = "incoming"        # what happens (see ACTIONS below)
    call = "c1"                # a label later steps use to name this call
    from = "+39 06 1234 5678"
    to = "201"
    caller_name = "Anna Neri"

    [[step]]
    wait = 1.5                 # seconds before this step (real time only)
    action = "answer"
    call = "c1"

    [[step]]
    wait = 3
    action = "hangup"
    call = "c1"
    by = "remote"

    [events]                   # the ssn_event sequence each extension must receive
    "201" = [16, 18, 20]

    [[expect]]                 # the activities callbridge should write (for demo and e2e)
    extension = "201"
    direction = "inbound"
    outcome = "answered"
    remote_number = "+39 06 1234 5678"

An optional ``[pbx]`` table shapes how the simulated PBX behaves during the run, for the
shapes a real PBX may produce that the document does not rule out::

    [pbx]
    ext_id = "none"      # caller (default) | every_leg | none: which legs' events echo
                         # the external id of a CallReq
    answer = "ok"        # soap (default) | empty | html | ok | result: the body of a 200

``expect`` entries have ``extension``, ``count`` (default 1; 0 means "no activity for this
extension"), and optionally ``direction`` (inbound/outbound/internal), ``outcome``
(answered/missed/rejected), ``remote_number`` and ``external_id_of`` (the label of a call
placed through SOAP: the activity must carry that call's external id).

Steps run in order. With ``realtime=False`` waits are skipped (tests); SOAP steps always
go over real HTTP to the simulator's own endpoint, through callbridge's ``SoapClient``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .engine import EXT_ID_MODES, ExtIdMode, SimCall
from .soap_server import ANSWER_STYLES

_CALL = "call"
#: action -> (required keys, optional keys), besides ``action`` and ``wait``.
ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "incoming": (frozenset({_CALL, "from", "to"}), frozenset({"caller_name"})),
    "internal": (frozenset({_CALL, "from", "to"}), frozenset()),
    "outgoing": (
        frozenset({_CALL, "extension", "number"}),
        frozenset({"external_id", "callee_name"}),
    ),
    "soap_call_req": (
        frozenset({_CALL, "extension", "number"}),
        frozenset({"external_id", "device_id"}),
    ),
    "await_call_req": (frozenset({_CALL}), frozenset({"timeout", "extension"})),
    "answer": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "reject": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "hangup": (frozenset({_CALL}), frozenset({"extension", "by", "soap"})),
    "hold": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "retrieve": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "record_start": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "record_stop": (frozenset({_CALL}), frozenset({"extension", "soap"})),
    "divert": (frozenset({_CALL, "to"}), frozenset({"extension", "soap"})),
    "transfer": (frozenset({_CALL, "to_call", "extension"}), frozenset({"soap"})),
    "pick": (frozenset({_CALL, "extension", "target"}), frozenset({"soap"})),
    "hunt_next": (frozenset({_CALL}), frozenset()),
    "device_login": (frozenset({"device"}), frozenset()),
    "device_logout": (frozenset({"device"}), frozenset()),
}
_STARTS_CALL = frozenset({"incoming", "internal", "outgoing", "soap_call_req", "await_call_req"})
_EXPECT_KEYS = frozenset(
    {"extension", "count", "direction", "outcome", "remote_number", "external_id_of"}
)


class ScenarioError(ValueError):
    """A scenario file that cannot be run: names the file, the step and the problem."""


@dataclass(frozen=True)
class Step:
    """One step: wait, then do ``action`` with ``args``."""

    action: str
    args: dict[str, Any]
    wait: float = 0.0


@dataclass(frozen=True)
class Expectation:
    """An activity callbridge should write for this scenario (``count`` of them)."""

    extension: str
    count: int = 1
    direction: str | None = None
    outcome: str | None = None
    remote_number: str | None = None
    external_id_of: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario file."""

    name: str
    description: str
    steps: tuple[Step, ...]
    events: dict[str, tuple[int, ...]] = field(default_factory=dict)
    expect: tuple[Expectation, ...] = ()
    source: str = ""
    #: The ``[pbx]`` table: which legs echo the external id, and the body of SOAP 200s.
    ext_id: ExtIdMode = "caller"
    answer: str = "soap"
    #: The PBX company it runs in (``company_id = 2`` at the top level: the second simulated
    #: company, Globex); its SOAP steps use that company's integration account.
    company_id: int = 1

    @property
    def summary(self) -> str:
        """The first line of the description (empty when there is none)."""
        lines = self.description.strip().splitlines()
        return lines[0] if lines else ""

    @property
    def duration(self) -> float:
        """Seconds of waiting in real time at speed 1."""
        return sum(step.wait for step in self.steps)


@dataclass
class PlayResult:
    """What a run produced: the calls by label, and the external ids sent through SOAP."""

    scenario: Scenario
    calls: dict[str, SimCall] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)

    def owners(self) -> dict[str, str]:
        """user call id -> extension of its user, for every leg of the scenario's calls."""
        owner: dict[str, str] = {}
        for call in self.calls.values():
            for each in (call, call.resolved()):
                owner.update((leg.user_call_id, leg.user.extension) for leg in each.legs)
        return owner

    def events_of(self, events: list[dict[str, str]]) -> list[dict[str, str]]:
        """The call events (16-21) of this run, in order."""
        owner = self.owners()
        return [e for e in events if e.get("call_id") in owner]

    def events_by_extension(self, events: list[dict[str, str]]) -> dict[str, list[int]]:
        """The ssn_event codes each extension received in this run, in order."""
        owner = self.owners()
        found: dict[str, list[int]] = {}
        for event in events:
            extension = owner.get(event.get("call_id", ""))
            if extension is not None:
                found.setdefault(extension, []).append(int(event["ssn_event"]))
        return found

    def check_events(self, events: list[dict[str, str]]) -> list[str]:
        """Compare the run's events with the scenario's ``[events]``; return the differences."""
        got = self.events_by_extension(events)
        problems = []
        for extension, wanted in self.scenario.events.items():
            if tuple(got.get(extension, [])) != wanted:
                problems.append(
                    f"{extension}: expected events {list(wanted)}, got {got.get(extension, [])}"
                )
        return problems


# ------------------------------------------------------------------ loading


def _fail(source: str, where: str, problem: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {problem}")


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and check one scenario; raise ScenarioError naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"name", "description", "step", "events", "expect", "pbx", "company_id"}
    if unknown:
        raise _fail(source, "top level", f"unknown keys {sorted(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(source, "top level", "a scenario needs a name")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _fail(source, "top level", "a scenario needs at least one [[step]]")
    labels: set[str] = set()
    steps = []
    for index, raw in enumerate(raw_steps, 1):
        steps.append(_parse_step(raw, labels, source, f"step {index}"))
    events: dict[str, tuple[int, ...]] = {}
    for extension, codes in dict(data.get("events", {})).items():
        if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
            raise _fail(source, f"events.{extension}", "expected a list of ssn_event numbers")
        events[str(extension)] = tuple(codes)
    expect = [
        _parse_expectation(raw, labels, source, f"expect {index}")
        for index, raw in enumerate(data.get("expect", []), 1)
    ]
    ext_id, answer = _parse_pbx(data.get("pbx", {}), source)
    company_id = data.get("company_id", 1)
    if not isinstance(company_id, int) or isinstance(company_id, bool) or company_id < 1:
        raise _fail(source, "top level", "company_id must be a positive integer")
    return Scenario(
        name=name,
        description=str(data.get("description", "")),
        steps=tuple(steps),
        events=events,
        expect=tuple(expect),
        source=source,
        ext_id=ext_id,
        answer=answer,
        company_id=company_id,
    )


def _parse_expectation(raw: object, labels: set[str], source: str, where: str) -> Expectation:
    if not isinstance(raw, dict) or "extension" not in raw:
        raise _fail(source, where, "needs an extension")
    if set(raw) - _EXPECT_KEYS:
        raise _fail(source, where, f"unknown keys {sorted(set(raw) - _EXPECT_KEYS)}")
    label = raw.get("external_id_of")
    if label is not None and label not in labels:
        raise _fail(source, where, f"external_id_of names unknown call {label!r}")
    return Expectation(
        extension=str(raw["extension"]),
        count=int(raw.get("count", 1)),
        direction=raw.get("direction"),
        outcome=raw.get("outcome"),
        remote_number=raw.get("remote_number"),
        external_id_of=label,
    )


def _parse_pbx(pbx: object, source: str) -> tuple[Any, Any]:
    """The ``[pbx]`` table: how the simulated PBX fills ext_id and answers (checked)."""
    if not isinstance(pbx, dict) or set(pbx) - {"ext_id", "answer"}:
        raise _fail(source, "pbx", "a table with ext_id and/or answer")
    ext_id = pbx.get("ext_id", "caller")
    if ext_id not in EXT_ID_MODES:
        raise _fail(source, "pbx.ext_id", f"one of {list(EXT_ID_MODES)}")
    answer = pbx.get("answer", "soap")
    if answer not in ANSWER_STYLES:
        raise _fail(source, "pbx.answer", f"one of {list(ANSWER_STYLES)}")
    return ext_id, answer


def _parse_step(raw: object, labels: set[str], source: str, where: str) -> Step:
    if not isinstance(raw, dict):
        raise _fail(source, where, "a step is a table")
    args = dict(raw)
    action = args.pop("action", None)
    wait = args.pop("wait", 0)
    if action not in ACTIONS:
        raise _fail(source, where, f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    if not isinstance(wait, int | float) or wait < 0:
        raise _fail(source, where, "wait must be a number of seconds >= 0")
    required, optional = ACTIONS[action]
    missing = required - set(args)
    if missing:
        raise _fail(source, where, f"{action} needs {sorted(missing)}")
    extra = set(args) - required - optional
    if extra:
        raise _fail(source, where, f"{action} does not take {sorted(extra)}")
    if _CALL in args:
        label = str(args[_CALL])
        if action in _STARTS_CALL:
            if label in labels:
                raise _fail(source, where, f"call label {label!r} is used twice")
            labels.add(label)
        elif action != "pick" and label not in labels:
            raise _fail(source, where, f"unknown call {label!r}")
    if "to_call" in args and str(args["to_call"]) not in labels:
        raise _fail(source, where, f"unknown call {args['to_call']!r}")
    return Step(action=action, args=args, wait=float(wait))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{file}: {exc.strerror or exc}") from None
    return parse_scenario(text, str(file))


def builtin_scenarios() -> list[Scenario]:
    """The scenarios shipped in ``callbridge/sim/scenarios``, in file-name order."""
    return _shipped("scenarios")


def company_scenarios() -> list[Scenario]:
    """The scenarios of the second simulated company (``scenarios/companies``): they need
    the two-company directory (``callbridge sim --companies 2``)."""
    return _shipped("scenarios", "companies")


def _shipped(*where: str) -> list[Scenario]:
    folder = resources.files("callbridge.sim").joinpath(*where)
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.append(parse_scenario(entry.read_text(encoding="utf-8"), entry.name))
    return found


def find_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario (of either company) by name, or a scenario file by path."""
    shipped = builtin_scenarios() + company_scenarios()
    for scenario in shipped:
        if scenario.name == name_or_path:
            return scenario
    if Path(name_or_path).is_file():
        return load_scenario(name_or_path)
    names = ", ".join(s.name for s in shipped)
    raise ScenarioError(f"no scenario {name_or_path!r} (built-in: {names})")


def __getattr__(name: str) -> Any:
    """``ScenarioPlayer`` and ``play`` moved to ``playback``; the old path still works.

    Imported lazily because ``playback`` imports this module.
    """
    if name in ("ScenarioPlayer", "play"):
        from . import playback

        return getattr(playback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
