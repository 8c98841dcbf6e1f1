"""callbridge's own settings, read from ``CALLBRIDGE_*`` environment variables and ``.env``.

Nested groups use a double underscore: ``CALLBRIDGE_PBX__SOAP_URL``. Lists take commas
(``CALLBRIDGE_PLUGINS=a,b``) or JSON. Secrets are ``SecretStr`` and print as ``**********``.
Plugins have their own settings classes with their own prefixes (see ``PluginSettings``).

``load_settings()`` turns pydantic's validation errors into one ``ConfigurationError`` whose
message names each environment variable and what is wrong with it; the CLI prints it and
exits with status 2.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import string
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigurationError
from .settings_types import CommaList, Region
from .settings_types import parse_comma_list as _split

ENV_PREFIX = "CALLBRIDGE_"


def _pairs(entries: list[str], shape: str) -> dict[str, str]:
    """``key=value`` entries as a dict (stripped); ValueError naming ``shape`` for a bad one."""
    pairs: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{entry!r} is not '{shape}'")
        pairs[key.strip()] = value.strip()
    return pairs


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/callbridge``, else ``~/.local/share/callbridge``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "callbridge"


class SeriSettings(BaseModel):
    """Names of VOIspeed's integration module ("SERI"), each one a default you can correct.

    None of these come from the vendor document: they are what public third-party code that
    talks to ``seri_endpoint.php`` uses (see docs/voispeed.md). A PBX that spells one
    differently is served by changing the setting, no code.
    """

    #: The callback parameter that names the event.
    event_param: str = "event_name"
    #: Event names: a call rings for the user (the core's 16).
    incoming_call: str = "incoming_call"
    #: The user calls out (17).
    outgoing_call: str = "outgoing_call"
    #: The call is answered (18).
    call_answered: str = "call_answered"
    #: The call ended; with ``disconnect_says = who_hung_up`` this one means the remote
    #: party hung up (20).
    call_disconnect_in: str = "call_disconnect_in"
    #: The call ended; with ``disconnect_says = who_hung_up``: the user hung up (21).
    call_disconnect_out: str = "call_disconnect_out"
    #: A call the user never answered (missed; nobody known to have hung up).
    lost_call: str = "lost_call"
    #: A command the PBX accepted then could not carry out (settles a click-to-call).
    cmd_failed: str = "cmd_failed"
    #: What ``_in``/``_out`` of the two disconnect events tell: ``who_hung_up`` (in: the
    #: remote party, out: the user) or ``direction`` (of the call; who hung up is unknown).
    disconnect_says: Literal["who_hung_up", "direction"] = "who_hung_up"
    #: Parameter names of the events.
    ext_param: str = "ext"
    number_param: str = "number"
    call_id_param: str = "usercallid"
    ext_id_param: str = "extid"
    request_id_param: str = "request_id"
    error_code_param: str = "error_code"
    error_msg_param: str = "error_msg"
    #: Parameters that may carry the number dialled (a DID) on an incoming call, first found.
    dialled_params: CommaList = Field(default_factory=lambda: ["called", "did", "to"])
    #: How ``usercallid`` reads: ``decimal`` (a monitor table's integer) or ``hex`` (the
    #: document's 8-character form). A value that is neither is hashed to a stable id.
    call_id_form: Literal["decimal", "hex"] = "decimal"
    #: Commands: the query parameter naming the service, and the services used.
    service_param: str = "service"
    call_request: str = "call_request"
    #: A read-only service: ``callbridge pbx check`` uses it to test the token.
    user_call_report: str = "get_user_call_report"
    #: Elements of the XML answer.
    outcome_element: str = "outcome"
    request_id_element: str = "request_id"
    #: ``domain`` sent with every command (multi-tenant PBXs); empty: not sent.
    domain: str | None = None

    _split_dialled = field_validator("dialled_params", mode="before")(_split)


class PbxSettings(BaseModel):
    """How to reach the PBX's SOAP interface. The document leaves most of this open."""

    #: The SOAP endpoint. The document does not give it; ask the PBX's installer.
    soap_url: str = "http://127.0.0.1:8080/soap"
    #: The integration user, ``auth-Name@domain``.
    user: str | None = None
    #: The user's password in plain text; callbridge sends its MD5 hash.
    password: SecretStr | None = None
    #: Or the MD5 hash itself, as stored in the ``users`` table: sent exactly as given (a PBX
    #: may compare it as text, so its case is kept).
    password_md5: SecretStr | None = None
    #: Namespace URI of the ``vspbx:`` prefix (not given by the document).
    namespace: str = "urn:vspbx"
    #: SOAP envelope namespace, as printed in the document (SOAP 1.2 draft).
    envelope_namespace: str = "http://www.w3.org/2001/12/soap-envelope"
    #: SOAPAction header; ``{command}`` is replaced by the command name.
    soap_action: str = "{namespace}#{command}"
    #: Element names of the header. The document prints "First name", not an XML name.
    header_user_element: str = "username"
    header_password_element: str = "password"  # noqa: S105 - an element name
    #: Seconds to connect to the PBX, and to wait for its answer.
    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=10.0, gt=0)
    #: Retries of requests that provably never reached the PBX (see the SOAP client).
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_max_seconds: float = Field(default=20.0, gt=0)
    #: The callback parameter that carries the company id (the document does not name it).
    company_param: str = "company_id"
    #: Agents: ``extension=auth-name@domain`` entries, so the API can take an extension.
    agents: CommaList = Field(default_factory=list)
    #: Agents' devices: ``extension=device id`` entries (``201=000012A0``), the device
    #: CallReq rings for that agent when the request names none. Without one, the device the
    #: agent logged in last (event 1) is used; without that, CallReq names no device and the
    #: PBX chooses (see docs/voispeed.md).
    agent_devices: CommaList = Field(default_factory=list)
    #: The form of ``param1`` (the user a command is for): ``auth`` sends the PBX login
    #: ``auth-name@domain`` (as in the SOAP header and the ``users`` table); ``calling``
    #: sends ``calling-name@domain``, as the document's examples print it.
    param1_form: Literal["auth", "calling"] = "auth"
    #: Seconds within which a click-to-call is tied to the agent's first outgoing call to
    #: the same number when the PBX's events carry no ``ext_id``; a request that no call
    #: matched by then becomes ``unmatched`` (see docs/voispeed.md).
    originate_window: float = Field(default=60.0, gt=0)
    #: How callbridge places calls: ``soap`` (the document's SOAP CallReq at ``soap_url``)
    #: or ``seri`` (the integration module's ``call_request`` at ``seri_url``). Events are
    #: accepted in both dialects whatever this says (see docs/voispeed.md).
    dialect: Literal["soap", "seri"] = "soap"
    #: The integration module's command endpoint, shown by "Mostra dettagli".
    seri_url: str = "http://127.0.0.1/PBX/seri_endpoint.php"
    #: The module's command token ("Comandi abilitati").
    seri_token: SecretStr | None = None
    #: Names of the SERI dialect (``CALLBRIDGE_PBX__SERI__*``), each a correctable default.
    seri: SeriSettings = Field(default_factory=SeriSettings)

    _split_agents = field_validator("agents", "agent_devices", mode="before")(_split)

    @field_validator("agent_devices")
    @classmethod
    def _check_agent_devices(cls, value: list[str]) -> list[str]:
        from .voispeed.ids import InvalidIdentifier, parse_user_id

        _pairs(value, "extension=device id")
        for entry in value:
            try:
                parse_user_id(entry.partition("=")[2])
            except InvalidIdentifier as exc:
                raise ValueError(f"{entry!r}: {exc}") from None
        return value

    def device_map(self) -> dict[str, str]:
        """Extension -> device id (canonical form), from ``agent_devices``."""
        from .voispeed.ids import parse_user_id

        pairs = _pairs(self.agent_devices, "extension=device id")
        return {ext: parse_user_id(device) for ext, device in pairs.items()}

    def param1(self, login: str) -> str:
        """``param1`` for a PBX login, in the form ``param1_form`` names."""
        prefix, sep, rest = login.partition("-")
        if not sep or prefix not in ("auth", "calling"):
            return login  # not one of the two forms: sent as given
        return f"{self.param1_form}-{rest}"

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: list[str]) -> list[str]:
        _pairs(value, "extension=auth-name@domain")
        return value

    def agent_map(self) -> dict[str, str]:
        """Extension -> PBX login, from ``agents``."""
        return _pairs(self.agents, "extension=auth-name@domain")

    def password_hash(self) -> str | None:
        """The MD5 hash to send: the given hash, or the hash of the given password."""
        if self.password_md5 is not None:
            return self.password_md5.get_secret_value().strip()
        if self.password is not None:
            # MD5 is the PBX's protocol, not our choice (usedforsecurity=False says so).
            return hashlib.md5(
                self.password.get_secret_value().encode(), usedforsecurity=False
            ).hexdigest()
        return None

    @field_validator("password_md5")
    @classmethod
    def _check_md5(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            text = value.get_secret_value().strip()
            if len(text) != 32 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise ValueError("must be 32 hexadecimal characters (an MD5 hash)")
        return value


class ServerSettings(BaseModel):
    """The HTTP service (``callbridge serve``)."""

    #: The address ``serve`` listens on (``0.0.0.0``: every interface; keep it on loopback
    #: behind a TLS proxy, see docs/operations.md).
    host: str = "127.0.0.1"
    #: The TCP port ``serve`` listens on.
    port: int = Field(default=8765, ge=1, le=65535)
    #: Serve without an ingress token. Only for local use; the service refuses otherwise.
    insecure: bool = False
    #: Source networks allowed to call ``/pbx/events`` (empty: any).
    allowed_networks: CommaList = Field(default_factory=list)
    #: API tokens: ``token:ext1|ext2`` entries, ``*`` for all extensions.
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    #: Origins allowed by CORS (CRM domains that embed a softphone page).
    cors_origins: CommaList = Field(default_factory=list)
    #: Seconds between SSE heartbeat comments.
    heartbeat: float = Field(default=15.0, gt=0)
    #: What ``serve`` runs: ``all`` (the HTTP service and the engine, placed as ``engine``
    #: says), ``http`` (ingress, API, agent streams and panel, no engine: workers run
    #: elsewhere on the same Redis journal) or ``engine`` (the engine in this process, with
    #: only ``/healthz``, ``/readyz`` and ``/metrics`` over HTTP). See docs/scaling.md.
    role: Literal["all", "http", "engine"] = "all"
    #: Where ``serve`` runs the engine: ``process`` (a child, so CRM work never slows the
    #: PBX's acks), ``thread`` (in the HTTP process), or ``none`` (run ``callbridge engine``).
    engine: Literal["process", "thread", "none"] = "process"
    #: With ``engine = process``: how much lower the engine's CPU priority is (``nice``).
    #: When the machine is busy, the PBX's acknowledgements (its database write waits for
    #: them) get the processor first; the engine's work can wait milliseconds, and it has
    #: all the processor the HTTP service leaves. 0 keeps them equal.
    engine_nice: int = Field(default=10, ge=0, le=19)
    #: With ``engine = process``: seconds the engine may leave a health check unanswered
    #: (stopped with SIGSTOP, wedged) or report a stalled dispatcher before ``/readyz``
    #: fails and the log says so. ``serve`` asks it once a second.
    engine_heartbeat_timeout: float = Field(default=15.0, gt=0)
    #: With ``engine = process``: longest wait, in seconds, before restarting an engine that
    #: exited (the wait doubles from 1 s after each exit, and starts over once it ran a minute).
    engine_restart_max: float = Field(default=60.0, gt=0)
    #: Refused ``/pbx/events`` requests kept among rejected requests, per source address and
    #: minute; the rest are only counted (``callbridge_rejected_unrecorded_total``).
    rejected_per_minute: int = Field(default=60, ge=0)

    _split_lists = field_validator("allowed_networks", "api_tokens", "cors_origins", mode="before")(
        _split
    )

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network such as 10.0.0.0/8") from None
        return value


class DispatchSettings(BaseModel):
    """How events become hook calls and deliveries."""

    #: Worker threads of the engine: lanes that run hooks for different calls in parallel
    #: (the events of one call always run in order, on one lane).
    workers: int = Field(default=8, ge=1, le=256)
    #: Seconds a lookup may take before the pop goes out without that connector's contact.
    lookup_budget: float = Field(default=1.5, gt=0)
    #: Seconds a found contact stays cached, and a "not found".
    cache_ttl: float = Field(default=300.0, ge=0)
    cache_negative_ttl: float = Field(default=30.0, ge=0)
    #: Most lookups (connector, number) the cache keeps; the least recently used go first.
    cache_size: int = Field(default=10_000, ge=0)
    #: Delivery retries: attempts, total age in seconds, and the backoff bounds.
    max_attempts: int = Field(default=12, ge=1)
    max_age: float = Field(default=24 * 3600.0, gt=0)
    backoff_initial: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=600.0, gt=0)
    #: Seconds a lane keeps retrying an event whose effects fail (a journal outage), with
    #: capped exponential backoff, before it records the event as a dead letter (a rejected
    #: request with source ``dispatcher``) and moves on.
    event_retry_max_age: float = Field(default=600.0, gt=0)


class WrapUpSettings(BaseModel):
    """The agent's wrap-up of a call (notes, outcome, chosen record): see docs/wrap-up.md."""

    #: Seconds after hang-up an agent's call waits for its wrap-up before its activity is
    #: written (it is written as soon as the wrap-up is saved). 0: activities are written at
    #: once and amended (``update_call``) when a wrap-up comes. Either way, a wrap-up saved
    #: after the activity was written amends it, once per revision.
    wait: float = Field(default=0.0, ge=0, le=3600)


#: What a recording template may name (see ``RecordingSettings``).
RECORDING_FIELDS = frozenset(
    {"reference", "call_id", "company_id", "call_key", "extension", "date", "user_id"}
)


def _check_template(value: str | None, allowed: frozenset[str]) -> str | None:
    """A template naming only ``allowed`` fields, checked at start-up, not at the call."""
    if value is None:
        return None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a template: {exc}") from None
    unknown = sorted(name or "{}" for name in names - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; use {', '.join(sorted(allowed))}")
    return value


class RecordingSettings(BaseModel):
    """Where the PBX recorded a call, as a link on the activity: see docs/wrap-up.md."""

    #: The link an activity carries for a recorded call, e.g.
    #: ``https://pbx.example.com/rec/{company_id}/{date}/{reference}.wav``. Fields:
    #: ``{reference}`` (below), ``{call_id}`` (the user call id, 8 hex digits),
    #: ``{company_id}``, ``{call_key}``, ``{extension}``, ``{user_id}``, ``{date}`` (the
    #: call's start, ``YYYY-MM-DD`` UTC). A reference that is itself an http(s) URL is
    #: the link as it is. Unset: no other link.
    url_template: str | None = None
    #: The reference of a call the PBX recorded (CallRecStart, the tables' ``recording``
    #: flags) when nothing names the file: the vendor's document does not say how the PBX
    #: names its recordings, so this is a default to correct (same fields, no
    #: ``{reference}``); docs/voispeed.md.
    reference: str = "{call_id}"

    @field_validator("url_template")
    @classmethod
    def _url_fields(cls, value: str | None) -> str | None:
        return _check_template(value or None, RECORDING_FIELDS)

    @field_validator("reference")
    @classmethod
    def _reference_fields(cls, value: str) -> str:
        return _check_template(value, RECORDING_FIELDS - {"reference"}) or "{call_id}"


class TrackerSettings(BaseModel):
    """Call tracking policy."""

    #: Seconds after which a call with no end event is closed with outcome ``unknown``.
    call_expiry: float = Field(default=4 * 3600.0, gt=0)
    #: Seconds a group leg that ended unanswered is held to see whether another member
    #: answers; also how long after one member stops ringing the next member's ring still
    #: belongs to the same group call (hunt groups that ring members one after the other, with
    #: gaps up to about 30 s). See docs/call-tracking.md.
    group_window: float = Field(default=40.0, ge=0)
    #: When no member answered a group call: log ``one`` missed activity for the group call
    #: (the first leg that rang) or ``each`` member's missed leg. See docs/call-tracking.md.
    group_missed: Literal["one", "each"] = "one"
    #: Seconds after the last event of an ended call from which a new ring (16/17) with the
    #: same user call id is a new call (the PBX reuses ids), not a repeat of the old ring.
    reuse_after: float = Field(default=300.0, gt=0)
    #: Most finished calls the engine keeps whole in memory (each for up to an hour, for late
    #: events); beyond it the oldest are forgotten early. A late event for one is matched
    #: from the journal instead, so this bounds memory under sustained load, not behaviour.
    max_finished: int = Field(default=5000, ge=0)
    #: Most keys of forgotten calls remembered (each for a day), bounded the same way.
    max_forgotten: int = Field(default=20_000, ge=0)
    #: ``user id=extension`` entries: whose extension a call event's user (``sender_id``) is.
    #: Event 16's ``ext`` is the number called (a group's number, a DID), not the member's
    #: extension; see docs/voispeed.md. The MySQL ``users`` table, when a MySQL source is
    #: configured, comes first; login events (1, 2) teach the rest.
    user_extensions: CommaList = Field(default_factory=list)

    _split_users = field_validator("user_extensions", mode="before")(_split)

    @field_validator("user_extensions")
    @classmethod
    def _check_users(cls, value: list[str]) -> list[str]:
        for entry in value:
            user, sep, extension = entry.partition("=")
            if not sep or not user.strip() or not extension.strip():
                raise ValueError(f"{entry!r} is not 'user id=extension'")
        return value


class Settings(BaseSettings):
    """Everything the core reads from ``CALLBRIDGE_*``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    #: Where the journal and the directory plugin keep their files.
    data_dir: Path = Field(default_factory=default_data_dir)
    #: Region for numbers without a country code (ISO 3166 alpha-2).
    default_region: Region = "IT"
    #: Extra plugins: module names or paths of single .py files.
    plugins: CommaList = Field(default_factory=list)
    #: Which connectors are active when several are installed (empty: all configured ones).
    connectors: CommaList = Field(default_factory=list)
    #: A plugin that fails to load stops the service instead of being skipped.
    strict_plugins: bool = False
    #: A TOML file describing several companies (tenants), each with its own tokens, PBX
    #: credentials, agents and plugin instances (see docs/companies.md). Unset: one
    #: company, ``default``, made of the other variables.
    companies_file: Path | None = None
    #: Shared token the PBX (or its trigger) sends as the ``token`` parameter.
    ingress_token: SecretStr | None = None
    #: Optional event source besides HTTP ingress, e.g. ``mysql://user:pw@host/db``.
    source: SecretStr | None = None
    #: Journal backend: ``sqlite`` (embedded, default: ``journal.sqlite3`` and
    #: ``journal-state.sqlite3`` in the data directory), ``sqlite:///path/to/journal.sqlite3``
    #: (the state file goes beside it) or a ``redis://`` URL (secret: it may carry a password).
    journal: SecretStr = SecretStr("sqlite")
    #: Seconds within which an event with the same parameters is a repeat the journal drops
    #: (trigger retries, PBX re-sends); later, the same parameters are a new event.
    dedup_window: float = Field(default=3600.0, gt=0)
    #: Days the journal keeps finished things (handled events, agent messages, rejected
    #: requests, settled calls, done/dead deliveries, originates); 0 keeps them forever.
    retention_days: float = Field(default=30.0, ge=0)
    #: Seconds between two prunes by retention (the first runs a minute after the engine
    #: starts). A day suits the default retention; a short soak run uses minutes.
    prune_interval: float = Field(default=24 * 3600.0, gt=0)
    #: Log level, and the log format (``json``: one JSON object a line).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    pbx: PbxSettings = Field(default_factory=PbxSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    wrapup: WrapUpSettings = Field(default_factory=WrapUpSettings)
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)

    _split_lists = field_validator("plugins", "connectors", mode="before")(_split)


def env_name(prefix: str, loc: tuple[int | str, ...], delimiter: str = "__") -> str:
    """The environment variable behind a validation error location."""
    return prefix + delimiter.join(str(part) for part in loc if isinstance(part, str)).upper()


def explain(error: ValidationError, prefix: str = ENV_PREFIX) -> str:
    """One line per problem: ``CALLBRIDGE_PBX__PORT: Input should be a valid integer``."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        lines.append(f"{env_name(prefix, item['loc'])}: {item['msg']}")
    return "\n".join(lines)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], prefix: str, **overrides: Any) -> S:
    """Instantiate a settings class, turning validation errors into ConfigurationError."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigurationError("invalid configuration:\n" + explain(exc, prefix)) from None


def load_settings(**overrides: Any) -> Settings:
    """Read the core settings from the environment (and ``.env``)."""
    return load(Settings, ENV_PREFIX, **overrides)
