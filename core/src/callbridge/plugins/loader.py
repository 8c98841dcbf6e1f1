"""Finding, configuring and registering plugins: built-ins and third parties alike.

Plugins come from four sources, in this order (which is also the registration order):

1. the built-ins (``BUILTIN_PLUGINS``), loaded exactly like third-party entry points so that
   they prove the public mechanism works;
2. the entry point group ``callbridge`` of every installed distribution;
3. ``CALLBRIDGE_PLUGINS``: module names (``pkg.mod`` or ``pkg.mod:attr``) or paths of single
   ``.py`` files, for quick custom plugins;
4. ``extra`` objects handed to ``load_plugins`` (tests, the test kit).

Every candidate ends in one ``PluginInfo`` with a state. Only "active" plugins are registered
with pluggy, so the hook methods of ``manager.Plugins`` reach them alone. A plugin that fails
to import, to validate its settings, to configure, or to pass pluggy's validation is "failed"
with the reason and never takes the others down; ``CALLBRIDGE_STRICT_PLUGINS`` turns any
failure into a ``ConfigurationError``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from .. import hookspecs
from ..errors import ConfigurationError
from ..settings import Settings, explain
from . import tenants
from .base import NotConfigured
from .files import load_file

if TYPE_CHECKING:
    from ..companies import Companies

log = logging.getLogger(__name__)

PROJECT = "callbridge"
ENTRY_POINT_GROUP = "callbridge"

#: The built-in plugins, as entry point values. A class is instantiated with no arguments.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "callbridge.plugins.builtin.console:ConsolePlugin",
    "callbridge.plugins.builtin.directory:DirectoryPlugin",
    "callbridge.plugins.builtin.webhook:WebhookPlugin",
)

ACTIVE = "active"
NOT_CONFIGURED = "not configured"
FAILED = "failed"
DISABLED = "disabled"


@dataclass
class PluginInfo:
    """What the core knows about one plugin candidate, whatever became of it."""

    name: str
    version: str | None
    #: "builtin" | "entry point <dist>" | "CALLBRIDGE_PLUGINS" | "extra"
    source: str
    #: "active" | "not configured" | "failed" | "disabled"
    state: str
    #: Why it is not active (import error, settings errors naming each variable, ...).
    reason: str | None
    hooks: list[str]
    plugin: object | None = field(default=None, repr=False)
    #: Validated settings; kept out of repr so that nothing echoes them by accident.
    settings: BaseSettings | None = field(default=None, repr=False)
    #: The company this instance serves (``default`` without a companies file).
    company: str = "default"
    #: Its settings table from the companies file; None: the environment (one company).
    table: dict[str, Any] | None = field(default=None, repr=False)
    #: The core settings as its company sees them (``tenants.core_for``), for its context.
    core: Settings | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Shortcut for ``state == "active"``."""
        return self.state == ACTIVE


def new_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager with callbridge's hookspecs and nothing registered."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


# --- candidates -------------------------------------------------------------------------------


@dataclass
class _Candidate:
    """A plugin before its state is decided."""

    name: str
    source: str
    version: str | None
    plugin: object | None = None
    error: str | None = None


def _instantiate(obj: object) -> object:
    """Classes become instances: each load gets fresh plugin state."""
    return obj() if inspect.isclass(obj) else obj


def _name_of(obj: object, fallback: str) -> str:
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name else fallback


def _version_of(obj: object, default: str | None) -> str | None:
    for attr in ("version", "__version__"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return value
    return default


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _core_version() -> str | None:
    try:
        return importlib.metadata.version("callbridge")
    except importlib.metadata.PackageNotFoundError:
        return None


def _resolve(target: str) -> object:
    """Import ``module`` or ``module:attr.attr`` like an entry point value."""
    module_name, _, attrs = target.partition(":")
    obj: object = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj


def _ok(plugin: object, default_name: str, source: str, version: str | None) -> _Candidate:
    return _Candidate(_name_of(plugin, default_name), source, _version_of(plugin, version), plugin)


def _broken(name: str, source: str, version: str | None, exc: BaseException) -> _Candidate:
    return _Candidate(name, source, version, error=f"import failed: {_describe(exc)}")


def _from_target(target: str, source: str, default_name: str, version: str | None) -> _Candidate:
    try:
        plugin = _instantiate(_resolve(target))
    except Exception as exc:
        return _broken(default_name, source, version, exc)
    return _ok(plugin, default_name, source, version)


def _builtin_candidates() -> list[_Candidate]:
    version = _core_version()
    out = []
    for target in BUILTIN_PLUGINS:
        default_name = target.partition(":")[0].rsplit(".", 1)[-1]
        out.append(_from_target(target, "builtin", default_name, version))
    return out


def _entry_point_candidates() -> list[_Candidate]:
    out = []
    seen: set[tuple[str, str]] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else None
        key = (dist_name or "", ep.name)
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        source = f"entry point {dist_name}" if dist_name else "entry point"
        version = dist.version if dist is not None else None
        try:
            plugin = _instantiate(ep.load())
        except Exception as exc:
            out.append(_broken(ep.name, source, version, exc))
            continue
        out.append(_ok(plugin, ep.name, source, version))
    return out


def _env_candidates(entries: Sequence[str]) -> list[_Candidate]:
    out = []
    source = "CALLBRIDGE_PLUGINS"
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        if text.endswith(".py") or os.sep in text or "/" in text:
            path = Path(text).expanduser().resolve()
            try:
                plugin = load_file(path)
            except Exception as exc:
                out.append(_broken(path.stem, source, None, exc))
                continue
            out.append(_ok(plugin, path.stem, source, None))
        else:
            default_name = text.partition(":")[0].rsplit(".", 1)[-1]
            out.append(_from_target(text, source, default_name, None))
    return out


def _extra_candidates(objects: Sequence[object]) -> list[_Candidate]:
    out = []
    for obj in objects:
        try:
            plugin = _instantiate(obj)
        except Exception as exc:
            out.append(_broken(getattr(obj, "__name__", repr(obj)), "extra", None, exc))
            continue
        fallback = getattr(plugin, "__name__", None) or type(plugin).__name__
        out.append(_ok(plugin, str(fallback), "extra", None))
    return out


# --- settings -----------------------------------------------------------------------------------


def _settings_prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix") or "")


def _dotenv_keys(cls: type[BaseSettings]) -> list[str]:
    env_file = cls.model_config.get("env_file")
    if env_file is None:
        return []
    files = [env_file] if isinstance(env_file, str | Path) else list(env_file)
    keys: list[str] = []
    from dotenv import dotenv_values

    for name in files:
        path = Path(name).expanduser()
        if path.is_file():
            keys.extend(dotenv_values(path).keys())
    return keys


def _variables_set(cls: type[BaseSettings]) -> list[str]:
    """Environment (and .env) variables with the class's prefix: is the plugin configured?"""
    prefix = _settings_prefix(cls).upper()
    if not prefix:
        return []
    names = [*os.environ, *_dotenv_keys(cls)]
    return sorted({name.upper() for name in names if name.upper().startswith(prefix)})


def _explain(exc: ValidationError, prefix: str) -> str:
    """``explain``, minus the doubled prefix of fields whose alias is a full variable name."""
    doubled = (prefix + prefix).upper()
    lines = explain(exc, prefix).splitlines()
    return "\n".join(line[len(prefix) :] if line.startswith(doubled) else line for line in lines)


def _accepts_core(configure: Callable[..., Any]) -> bool:
    try:
        return "core" in inspect.signature(configure).parameters
    except (TypeError, ValueError):
        return False


def _configure(info: PluginInfo, core: Settings) -> None:
    """Validate the plugin's settings and call ``configure``; set the state on failure.

    ``core`` is the company's view of the core settings (see ``tenants.core_for``).
    """
    plugin = info.plugin
    settings_class = getattr(plugin, "settings_class", None)
    settings: BaseSettings | None = None
    if settings_class is not None:
        if not (inspect.isclass(settings_class) and issubclass(settings_class, BaseSettings)):
            info.state, info.reason = FAILED, "settings_class is not a pydantic BaseSettings class"
            return
        prefix = _settings_prefix(settings_class)
        try:
            table = info.table
            settings = (
                settings_class() if table is None else tenants.table_settings(settings_class, info)
            )
        except ValidationError as exc:
            if info.table is not None:
                info.state, info.reason = (
                    FAILED,
                    f"invalid settings:\n{tenants.explain_table(exc, info)}",
                )
                return
            problems = _explain(exc, prefix)
            if not _variables_set(settings_class) and prefix:
                info.state = NOT_CONFIGURED
                info.reason = f"no {prefix}* variable is set; needs:\n{problems}"
            else:
                info.state, info.reason = FAILED, f"invalid settings:\n{problems}"
            return
        except Exception as exc:
            info.state, info.reason = FAILED, f"settings: {_describe(exc)}"
            return
        info.settings = settings
    configure = getattr(plugin, "configure", None)
    if configure is None or not callable(configure):
        return
    try:
        if _accepts_core(configure):
            configure(settings, core=core)
        else:
            configure(settings)
    except NotConfigured as exc:
        info.state, info.reason = NOT_CONFIGURED, str(exc) or "not configured"
    except ConfigurationError as exc:
        info.state, info.reason = FAILED, str(exc)
    except Exception as exc:
        info.state, info.reason = FAILED, f"configure failed: {_describe(exc)}"


def _forced(info: PluginInfo) -> bool | None:
    """The generic ``enabled`` setting: True forces a fallback on, False turns any plugin off."""
    value = getattr(info.settings, "enabled", None) if info.settings is not None else None
    return value if isinstance(value, bool) else None


# --- registration -------------------------------------------------------------------------------


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    names = []
    for attr in dir(plugin):
        try:
            if pm.parse_hookimpl_opts(plugin, attr) is not None:
                names.append(attr)
        except Exception:  # noqa: S112 - an odd attribute is simply not a hook
            continue
    return names


def _register(pm: pluggy.PluginManager, info: PluginInfo) -> None:
    """Register one plugin; pluggy's complaints fail this plugin only."""
    try:
        pm.register(info.plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        info.state, info.reason = FAILED, f"invalid hook implementation: {exc}"
    except ValueError as exc:  # already registered under another name (same object twice)
        info.state, info.reason = FAILED, str(exc)


def _check_pending(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
    """Run ``check_pending`` until it passes, failing each plugin it names (misspelled hooks)."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            culprit = next((i for i in infos if i.active and i.plugin is exc.plugin), None)
            if culprit is None:
                raise
            pm.unregister(culprit.plugin)
            culprit.state = FAILED
            culprit.reason = (
                f"{exc}; known hooks: {', '.join(sorted(_spec_names(pm)))}"
                if "unknown hook" in str(exc)
                else str(exc)
            )


def _spec_names(pm: pluggy.PluginManager) -> list[str]:
    return [name for name, caller in vars(pm.hook).items() if caller.has_spec()]


def _writes_activities(info: PluginInfo) -> bool:
    """Counts as "something else is configured" for fallback plugins."""
    return (
        info.active
        and "log_call" in info.hooks
        and not getattr(info.plugin, "fallback", False)
        and not getattr(info.plugin, "embedded_default", False)
    )


def _infos(pm: pluggy.PluginManager, candidates: list[_Candidate]) -> list[PluginInfo]:
    """One PluginInfo per candidate: failed when it did not import or its name is taken."""
    infos: list[PluginInfo] = []
    first_by_name: dict[str, PluginInfo] = {}
    for cand in candidates:
        hooks = _hooks_of(pm, cand.plugin) if cand.plugin is not None else []
        info = PluginInfo(cand.name, cand.version, cand.source, ACTIVE, None, hooks, cand.plugin)
        first = first_by_name.setdefault(cand.name, info)
        if cand.error is not None:
            info.state, info.reason = FAILED, cand.error
        elif first is not info:
            info.state = FAILED
            info.reason = f"another plugin named {cand.name!r} is already loaded ({first.source})"
        infos.append(info)
    return infos


def _select_and_configure(
    infos: list[PluginInfo], settings: Settings, selected: list[str], companies: Companies | None
) -> None:
    """Apply ``CALLBRIDGE_CONNECTORS``, then configure each plugin still active."""
    names = {info.name for info in infos}
    unknown = [name for name in selected if name not in names]
    if unknown:
        raise ConfigurationError(
            f"CALLBRIDGE_CONNECTORS: unknown plugin(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(names)) or 'none'}"
        )
    for info in infos:
        if info.state != ACTIVE:
            continue
        if selected and info.name not in selected:
            info.state = DISABLED
            info.reason = f"not selected by CALLBRIDGE_CONNECTORS={','.join(selected)}"
            continue
        info.core = tenants.core_for(info, settings, companies)
        _configure(info, info.core)
        if info.state == ACTIVE and _forced(info) is False:
            prefix = _settings_prefix(type(info.settings)) if info.settings else ""
            info.state, info.reason = DISABLED, f"turned off by {prefix}ENABLED=false"


def _register_all(pm: pluggy.PluginManager, infos: list[PluginInfo], selected: list[str]) -> None:
    """Register the active plugins; fallback plugins (``fallback = True``) only when needed."""

    def is_fallback(info: PluginInfo) -> bool:
        explicit = bool(selected) or _forced(info) is True or info.table is not None
        return bool(getattr(info.plugin, "fallback", False)) and not explicit

    for info in infos:
        if info.state == ACTIVE and not is_fallback(info):
            _register(pm, info)
    _check_pending(pm, infos)

    writers = [info.name for info in infos if _writes_activities(info)]
    for info in infos:
        if info.state != ACTIVE or not is_fallback(info):
            continue
        if writers:
            info.state = DISABLED
            info.reason = f"fallback, not needed: {', '.join(writers)} log calls"
            continue
        _register(pm, info)
    _check_pending(pm, infos)


def discover(
    settings: Settings,
    *,
    entry_points: bool = True,
    builtins: bool = True,
    extra: Sequence[object] = (),
    companies: Companies | None = None,
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Find every plugin, decide its state, and register the active ones with pluggy.

    With several ``companies``, each plugin a company lists becomes one instance per company
    (``name@company``, see ``tenants``); ``CALLBRIDGE_CONNECTORS`` does not apply.

    Raises ConfigurationError when ``CALLBRIDGE_CONNECTORS`` names an unknown plugin, and in
    strict mode (``CALLBRIDGE_STRICT_PLUGINS``) when any plugin failed.
    """
    pm = new_plugin_manager()
    candidates: list[_Candidate] = []
    if builtins:
        candidates += _builtin_candidates()
    if entry_points:
        candidates += _entry_point_candidates()
    candidates += _env_candidates(settings.plugins)
    candidates += _extra_candidates(extra)

    infos = _infos(pm, candidates)
    selected = [name.strip() for name in settings.connectors if name.strip()]
    if companies is not None and not companies.single:
        infos, selected = tenants.expand(infos, companies), []
    _select_and_configure(infos, settings, selected, companies)
    _register_all(pm, infos, selected)

    failures = [info for info in infos if info.state == FAILED]
    for info in failures:
        log.warning("plugin %s failed: %s", info.name, info.reason)
    if failures and settings.strict_plugins:
        detail = "\n".join(f"- {info.name}: {info.reason}" for info in failures)
        raise ConfigurationError(f"plugins failed (CALLBRIDGE_STRICT_PLUGINS is on):\n{detail}")
    return pm, infos
