"""``callbridge sim``: run the simulated VOIspeed PBX from the command line.

The simulator reads the same ``CALLBRIDGE_PBX__*`` settings as callbridge's SOAP client
(namespaces, header element names, the integration user and password, the endpoint's port
and path), and the same ``CALLBRIDGE_INGRESS_TOKEN``, so both sides configured alike just
work together.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import click

from ..settings import Settings, load_settings
from ..sim.emitter import EventSink, FanoutSink, HttpSink, MemorySink, TextForm
from ..sim.engine import ExtReading
from ..sim.load import LoadSpec, run_load
from ..sim.model import DEFAULT_PASSWORD, Directory, default_directory, two_company_directory
from ..sim.playback import play
from ..sim.scenarios import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    company_scenarios,
    find_scenario,
)
from ..sim.simulator import OutboundPolicy, Simulator

_callback = click.option(
    "--callback",
    metavar="URL",
    help="Where to send events (GET with a query string), e.g. http://127.0.0.1:8765/pbx/events.",
)
_token = click.option(
    "--token",
    metavar="T",
    help="Token added to every event as ?token=... (default: CALLBRIDGE_INGRESS_TOKEN).",
)


_text = click.option(
    "--text",
    type=click.Choice(["utf-8", "latin1", "utf8-raw", "latin1-raw"]),
    default="utf-8",
    show_default=True,
    help="How names travel: escaped UTF-8, escaped latin1 (%F2), or raw bytes in the URL.",
)
_ext = click.option(
    "--ext",
    "ext_reading",
    type=click.Choice(["extension", "dialled"]),
    default="extension",
    show_default=True,
    help="What 16's ext carries: the member's extension, or the number dialled (group, DID).",
)
_group_end = click.option(
    "--group-end",
    type=click.Choice(["20", "19"]),
    default="20",
    show_default=True,
    help="The event that ends the legs of group members who did not answer.",
)


_companies = click.option(
    "--companies",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="Companies on the simulated PBX: 1 (ACME, company id 1) or 2 (and Globex, id 2).",
)
_company_token = click.option(
    "--company-token",
    "company_tokens",
    multiple=True,
    metavar="ID=TOKEN",
    help="The ingress token of company ID's events (repeatable); others carry --token.",
)


def _company_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--companies`` and ``--company-token``: a multi-company PBX (docs/simulator.md)."""
    return _companies(_company_token(command))


def _directory(companies: int) -> Directory:
    return two_company_directory() if companies == 2 else default_directory()


def _tokens(pairs: tuple[str, ...]) -> dict[str, str]:
    tokens = {}
    for pair in pairs:
        company_id, sep, token = pair.partition("=")
        if not sep or not company_id.strip() or not token:
            raise click.BadParameter(
                f"expected ID=TOKEN, not {pair!r}", param_hint="--company-token"
            )
        tokens[company_id.strip()] = token
    return tokens


def _shapes(command: Callable[..., None]) -> Callable[..., None]:
    """The options for readings of the document a real PBX may follow (docs/simulator.md)."""
    return _text(_ext(_group_end(command)))


def _sink(
    settings: Settings,
    callback: str | None,
    token: str | None,
    text: TextForm = "utf-8",
    company_tokens: tuple[str, ...] = (),
) -> tuple[EventSink, str]:
    """The sink for ``--callback`` (plus memory, to check scenarios), and a description."""
    memory = MemorySink()
    if not callback:
        return memory, "memory only (no --callback)"
    secret = token or (
        settings.ingress_token.get_secret_value() if settings.ingress_token else None
    )
    try:
        http = HttpSink(
            callback,
            secret,
            text=text,
            company_tokens=_tokens(company_tokens),
            company_param=settings.pbx.company_param,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--callback") from None
    return FanoutSink(http, memory), callback


def _memory(sim: Simulator) -> MemorySink:
    sink = sim.inner_sink
    sinks = sink.sinks if isinstance(sink, FanoutSink) else (sink,)
    return next(s for s in sinks if isinstance(s, MemorySink))


def _http(sim: Simulator) -> HttpSink | None:
    sink = sim.inner_sink
    sinks = sink.sinks if isinstance(sink, FanoutSink) else (sink,)
    return next((s for s in sinks if isinstance(s, HttpSink)), None)


@click.group()
def sim() -> None:
    """A simulated VOIspeed PBX: SOAP commands in, ssn_events out (see docs/simulator.md)."""


@sim.command()
@_callback
@_token
@click.option("--host", default=None, help="Address to listen on (default: from the SOAP URL).")
@click.option(
    "--port", type=int, default=None, help="Port (default: from CALLBRIDGE_PBX__SOAP_URL)."
)
@click.option(
    "--answer-after",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds before the remote party of a click-to-call answers.",
)
@click.option(
    "--hangup-after",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds the remote party talks before hanging up.",
)
@click.option("--no-answer", is_flag=True, help="Remote parties of click-to-calls never answer.")
@click.option(
    "--login/--no-login",
    "login",
    default=True,
    show_default=True,
    help="Log every device in at start (ssn_event 1).",
)
@_shapes
@_company_options
def serve(
    callback: str | None,
    token: str | None,
    host: str | None,
    port: int | None,
    answer_after: float,
    hangup_after: float,
    no_answer: bool,
    login: bool,
    text: TextForm,
    ext_reading: ExtReading,
    group_end: str,
    companies: int,
    company_tokens: tuple[str, ...],
) -> None:
    """Run the SOAP endpoint and the call engine until Ctrl-C."""
    settings = load_settings()
    url = urlsplit(settings.pbx.soap_url)
    sink, where = _sink(settings, callback, token, text, company_tokens)
    policy = OutboundPolicy(
        answer_after=None if no_answer else answer_after, hangup_after=hangup_after
    )
    simulator = Simulator(
        sink=sink,
        settings=settings.pbx,
        directory=_directory(companies),
        host=host or url.hostname or "127.0.0.1",
        port=(url.port or 8080) if port is None else port,
        outbound=policy,
        ext_reading=ext_reading,
        group_end=19 if group_end == "19" else 20,
    )
    try:
        simulator.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from None
    click.echo(f"simulated PBX: SOAP endpoint {simulator.url}")
    click.echo(f"events to: {where}")
    click.echo(
        f"SOAP user auth-callbridge@acme, password {DEFAULT_PASSWORD!r} (or CALLBRIDGE_PBX__USER)"
    )
    for user in simulator.directory.users:
        click.echo(
            f"  {user.extension}  {user.name} {user.surname} ({user.department})  {user.login}"
            f"  company {user.company_id}"
        )
    for group in simulator.directory.groups:
        click.echo(f"  {group.number}  group {group.name}: {', '.join(group.members)}")
    if login:
        simulator.login_all()
    click.echo("Ctrl-C to stop")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        simulator.stop()


@sim.command(name="play")
@click.argument("names", nargs=-1, metavar="SCENARIO...")
@click.option("--all", "play_all", is_flag=True, help="Play every built-in scenario.")
@_callback
@_token
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Time factor: 2 plays twice as fast.",
)
@click.option("--fast", is_flag=True, help="Skip the waits between steps.")
@_shapes
@_company_options
def play_command(
    names: tuple[str, ...],
    play_all: bool,
    callback: str | None,
    token: str | None,
    speed: float,
    fast: bool,
    text: TextForm,
    ext_reading: ExtReading,
    group_end: str,
    companies: int,
    company_tokens: tuple[str, ...],
) -> None:
    """Play scenarios (built-in names or .toml files); exit 1 if one misbehaves.

    With ``--companies 2``, ``--all`` plays the second company's scenarios too."""
    if not names and not play_all:
        raise click.UsageError("name a scenario or pass --all (see `callbridge sim scenarios`)")
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    try:
        scenarios = _chosen(names, play_all, companies)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    settings = load_settings()
    sink, where = _sink(settings, callback, token, text, company_tokens)
    failures = 0
    with Simulator(
        sink=sink,
        settings=settings.pbx,
        directory=_directory(companies),
        ext_reading=ext_reading,
        group_end=19 if group_end == "19" else 20,
    ) as simulator:
        click.echo(f"events to: {where}")
        for scenario in scenarios:
            failures += not _play_one(simulator, scenario, realtime=not fast, speed=speed)
        http = _http(simulator)
        if http is not None:
            refused = [d for d in http.deliveries if not d.ok]
            click.echo(
                f"delivered {len(http.deliveries) - len(refused)} of {len(http.deliveries)} events"
            )
            failures += bool(refused)
    sys.exit(1 if failures else 0)


@sim.command()
@_callback
@_token
@click.option("--rate", type=float, default=10.0, show_default=True, help="Calls per second.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option(
    "--concurrency",
    type=int,
    default=500,
    show_default=True,
    help="Most calls up at once (more are skipped and counted).",
)
@click.option("--ring-time", type=float, default=1.0, show_default=True)
@click.option("--talk-time", type=float, default=3.0, show_default=True)
@click.option("--answer-ratio", type=float, default=0.8, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable runs.")
@_company_options
def load(
    callback: str | None,
    token: str | None,
    rate: float,
    duration: float,
    concurrency: int,
    ring_time: float,
    talk_time: float,
    answer_ratio: float,
    seed: int | None,
    companies: int,
    company_tokens: tuple[str, ...],
) -> None:
    """Generate many concurrent inbound calls at a steady rate and report what was sent.

    The calls go round the agents of every company the simulator has (``--companies``)."""
    try:
        spec = LoadSpec(rate, duration, concurrency, ring_time, talk_time, answer_ratio, seed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    settings = load_settings()
    sink, where = _sink(settings, callback, token, company_tokens=company_tokens)
    with Simulator(sink=sink, settings=settings.pbx, directory=_directory(companies)) as simulator:
        click.echo(f"events to: {where}; {spec.calls} calls at {rate:g}/s")
        report = run_load(simulator, spec)
    for line in report.lines():
        click.echo(line)


def _play_one(simulator: Simulator, scenario: Scenario, *, realtime: bool, speed: float) -> bool:
    """Play one scenario and print what each extension received; False when it misbehaved."""
    click.echo(f"> {scenario.name}: {scenario.summary}")
    try:
        result = play(simulator, scenario, realtime=realtime, speed=speed)
    except ScenarioError as exc:
        click.echo(f"  FAILED: {exc}", err=True)
        return False
    simulator.flush()
    events = _memory(simulator).events
    problems = result.check_events(events)
    for extension, codes in sorted(result.events_by_extension(events).items()):
        click.echo(f"  {extension}: ssn_event {' '.join(map(str, codes))}")
    for label, ext_id in result.external_ids.items():
        click.echo(f"  {label}: external id {ext_id}")
    for problem in problems:
        click.echo(f"  MISMATCH {problem}", err=True)
    return not problems


def _chosen(names: tuple[str, ...], play_all: bool, companies: int) -> list[Scenario]:
    """The scenarios to play; one of a company the simulator does not have is refused."""
    if play_all:
        return builtin_scenarios() + (company_scenarios() if companies == 2 else [])
    chosen = [find_scenario(n) for n in names]
    for scenario in chosen:
        if scenario.company_id > companies:
            raise ScenarioError(
                f"{scenario.name} runs in company {scenario.company_id}: "
                f"add --companies {scenario.company_id}"
            )
    return chosen


@sim.command()
def scenarios() -> None:
    """List the built-in scenarios (the second company's need ``--companies 2``)."""
    for scenario in builtin_scenarios() + company_scenarios():
        company = f"  (company {scenario.company_id})" if scenario.company_id != 1 else ""
        click.echo(f"{scenario.name:28} {scenario.summary}{company}")
