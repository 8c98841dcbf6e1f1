"""The loaded plugins, with one typed method per hook (the only way the core calls a hook).

Two kinds of hooks, two kinds of methods:

- *per plugin* (``lookup_contact``, ``search_contacts``, ``create_contact``, ``log_call``,
  ``update_call``): the core keeps each connector's answer, time budget and delivery apart,
  so it names the plugin; the plugin's exception propagates (the caller retries or records
  it);
- *fan-out* (``screen_pop``, ``pbx_event``, ``register_routes``, ``startup``, ``shutdown``):
  every active plugin is called in registration order, each isolated by ``_isolated``, so a
  failing plugin is logged and never keeps the others from their turn.

Every call goes through pluggy's own hook callers (a caller narrowed to one plugin), so
pluggy's tracing (``pm.trace``, ``add_hookcall_monitoring``) and hook wrappers
(``@hookimpl(wrapper=True)``) see each call. Finding and configuring the plugins is
``loader``'s job; ``load_plugins`` below ties the two together.

Companies: each plugin instance serves one company (``PluginInfo.company``; every plugin is
``default``'s without a companies file). ``implementers(hook, company=...)`` and the
fan-out hooks given a company reach only that company's instances: this is where an event
of company A is kept away from company B's CRMs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pluggy

from ..companies.registry import Companies, load_companies
from .loader import (
    ACTIVE,
    BUILTIN_PLUGINS,
    DISABLED,
    ENTRY_POINT_GROUP,
    FAILED,
    NOT_CONFIGURED,
    PluginInfo,
    discover,
    new_plugin_manager,
)

if TYPE_CHECKING:
    from fastapi import APIRouter

    from ..context import Context
    from ..models import ActivityRef, Call, CallRecord, ContactDraft, ScreenPop
    from ..settings import Settings
    from ..voispeed.events import AnyEvent

__all__ = [
    "ACTIVE",
    "BUILTIN_PLUGINS",
    "DISABLED",
    "ENTRY_POINT_GROUP",
    "FAILED",
    "NOT_CONFIGURED",
    "PluginInfo",
    "Plugins",
    "load_plugins",
    "new_plugin_manager",
]

log = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _implements(impl: pluggy.HookImpl) -> bool:
    """A real implementation, not a wrapper around the others'."""
    return not (impl.hookwrapper or impl.wrapper)


@dataclass(frozen=True)
class _Loaded:
    """One load of the plugins; a reload swaps the whole of it at once."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo]
    companies: Companies
    #: Hook callers narrowed to one plugin, by (hook, plugin name); registration is over
    #: once a load exists, so they never go stale. The same holds for the two below.
    callers: dict[tuple[str, str], pluggy.HookCaller] = field(default_factory=dict)
    #: ``implementers`` answers, by (hook, company): asked several times per event.
    implementers: dict[tuple[str, str | None], list[str]] = field(default_factory=dict)
    #: Plugin name -> its info (the first of that name).
    by_name: dict[str, PluginInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for info in self.infos:
            self.by_name.setdefault(info.name, info)


class Plugins:
    """The loaded plugins: pluggy's manager (active ones only) and every candidate's info."""

    def __init__(
        self, pm: pluggy.PluginManager, infos: list[PluginInfo], companies: Companies | None = None
    ) -> None:
        self._loaded = _Loaded(pm, infos, companies or Companies([], single=True))
        #: How ``load_plugins`` found them, so that ``reload`` finds them the same way.
        self.discovery: dict[str, Any] = {}
        #: Companies a reload removed: their events still in the journal reach no plugin.
        self.retired: set[str] = set()

    @property
    def pm(self) -> pluggy.PluginManager:
        """pluggy's manager of the current load (active plugins only)."""
        return self._loaded.pm

    @property
    def infos(self) -> list[PluginInfo]:
        """Every candidate of the current load, whatever its state."""
        return self._loaded.infos

    @property
    def companies(self) -> Companies:
        """The companies the plugins serve: the engine asks it an event's company."""
        return self._loaded.companies

    def reload(self, settings: Settings, companies: Companies) -> Plugins:
        """Find and configure the plugins again for ``companies``; swap them in at once.

        Returns the instances that are no longer in use (to ``shutdown``). A call already
        running on an old instance finishes there; the next goes to the new one.
        """
        pm, infos = discover(settings, companies=companies, **self.discovery)
        old, self._loaded = self._loaded, _Loaded(pm, infos, companies)
        self.retired = (self.retired | set(old.companies.names)) - set(companies.names)
        kept = {id(info.plugin) for info in infos if info.active}
        gone = [info for info in old.infos if id(info.plugin) not in kept]
        return Plugins(old.pm, gone, old.companies)

    # -- what is loaded ------------------------------------------------------------------------
    def active(self, company: str | None = None) -> list[PluginInfo]:
        """Active plugins (of ``company``, when given), in registration order (fallbacks last)."""
        loaded = self._loaded
        by_name = {
            info.name: info
            for info in loaded.infos
            if info.state == ACTIVE and (company is None or info.company == company)
        }
        return [by_name[name] for name, _ in loaded.pm.list_name_plugin() if name in by_name]

    def company_of(self, name: str) -> str | None:
        """The company plugin instance ``name`` serves (None when there is no such plugin)."""
        info = self._loaded.by_name.get(name)
        return info.company if info is not None else None

    def get(self, name: str) -> PluginInfo:
        """The info of the plugin called ``name`` (KeyError when there is none)."""
        return self._loaded.by_name[name]

    def implementers(self, hook: str, company: str | None = None) -> list[str]:
        """Names of the active plugins that implement ``hook``, in registration order.

        With ``company``, only that company's instances: the engine passes the call's company
        so that a call reaches its own company's CRMs only. Fallback plugins are registered
        after the others, so they come last. A plugin that only wraps the hook (a tracing
        wrapper) does not implement it.
        """
        loaded = self._loaded
        known = loaded.implementers.get((hook, company))
        if known is not None:
            return list(known)
        caller = getattr(loaded.pm.hook, hook, None)
        if caller is None:
            return []
        names = {impl.plugin_name for impl in caller.get_hookimpls() if _implements(impl)}
        # The active list of the same load (``active`` again could see a newer one).
        active = {
            info.name
            for info in loaded.infos
            if info.state == ACTIVE and (company is None or info.company == company)
        }
        found = [n for n, _ in loaded.pm.list_name_plugin() if n in active and n in names]
        loaded.implementers[(hook, company)] = found
        return list(found)

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's relay, for tools that inspect hooks; the core calls the methods below."""
        return self.pm.hook

    # -- per-plugin hooks: the plugin's exception propagates -----------------------------------
    def lookup_contact(self, name: str, number: str, call: Call) -> object:
        """Plugin ``name``'s contact for ``number`` (a ``Contact`` or None, if it keeps to
        the hookspec: callers check). KeyError when it does not implement the hook."""
        return self._call(name, "lookup_contact", number=number, call=call)

    def search_contacts(self, name: str, query: str) -> object:
        """Plugin ``name``'s records matching ``query`` (a list of ``Contact``: callers
        check). KeyError when it does not implement the hook."""
        return self._call(name, "search_contacts", query=query)

    def create_contact(self, name: str, draft: ContactDraft) -> object:
        """Plugin ``name`` creates ``draft``; returns the ``Contact`` (callers check).
        KeyError when it does not implement the hook."""
        return self._call(name, "create_contact", draft=draft)

    def log_call(self, name: str, record: CallRecord) -> object:
        """Plugin ``name`` writes the activity of ``record``; returns its ``ActivityRef`` (or
        whatever it returned: callers check). KeyError when it does not implement the hook."""
        return self._call(name, "log_call", record=record)

    def update_call(
        self, name: str, record: CallRecord, activity: ActivityRef, revision: int
    ) -> object:
        """Plugin ``name`` amends ``activity`` with ``record.wrapup`` (``revision``); returns
        its ``ActivityRef`` or None. KeyError when it does not implement the hook."""
        return self._call(name, "update_call", record=record, activity=activity, revision=revision)

    def lookup_ttl(self, name: str, found: bool, default: float) -> float:
        """Seconds the core caches plugin ``name``'s lookup answer (found, or "no match").

        A plugin may set ``lookup_cache_ttl`` / ``lookup_negative_ttl`` (seconds, e.g. from its
        own settings); None or an absent attribute means the core's ``default``
        (``CALLBRIDGE_DISPATCH__CACHE_TTL`` / ``__CACHE_NEGATIVE_TTL``). The core's cache is
        the only one: plugins keep none of their own.
        """
        try:
            plugin = self.get(name).plugin
        except KeyError:
            return default
        value = getattr(plugin, "lookup_cache_ttl" if found else "lookup_negative_ttl", None)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        return default

    # -- fan-out hooks: each plugin isolated ---------------------------------------------------
    def screen_pop(self, pop: ScreenPop) -> None:
        """Every plugin of the call's company shows ``pop``."""
        self._each("screen_pop", pop.call.company, pop=pop)

    def pbx_event(self, event: AnyEvent, company: str | None = None) -> None:
        """Every plugin of ``company`` observes a journaled PBX event (by default the event's
        own company, ``default`` without one)."""
        self._each("pbx_event", company or event.company or "default", event=event)

    def startup(self, context: Context | None) -> None:
        """Every plugin opens its clients (each with its company's view of ``context``)."""
        for name in self.implementers("startup"):
            self._isolated(name, "startup", context=self._context_for(name, context))

    def shutdown(self, context: Context | None) -> None:
        """Every plugin closes its clients (each with its company's view of ``context``)."""
        for name in self.implementers("shutdown"):
            self._isolated(name, "shutdown", context=self._context_for(name, context))

    def _context_for(self, name: str, context: Context | None) -> Context | None:
        """``context`` as plugin ``name``'s company sees it: its settings, its name."""
        info = self._loaded.by_name.get(name)
        if context is None or info is None or info.table is None or info.core is None:
            return context
        return replace(context, settings=info.core, company=info.company)

    def register_routes(self, router_for: Callable[[str], APIRouter]) -> list[APIRouter]:
        """Each plugin fills its own ``router_for(name)``; the routers of those that succeeded.

        A plugin that raises half-way leaves its router out entirely, never half mounted.
        """
        routers = []
        for name in self.implementers("register_routes"):
            router = router_for(name)
            if self._isolated(name, "register_routes", router=router):
                routers.append(router)
        return routers

    # -- the machinery -------------------------------------------------------------------------
    def _caller(self, name: str, hook: str) -> pluggy.HookCaller:
        """pluggy's caller for ``hook`` narrowed to plugin ``name`` (wrappers kept)."""
        key = (hook, name)
        loaded = self._loaded
        caller = loaded.callers.get(key)
        if caller is not None:
            return caller
        full = getattr(loaded.pm.hook, hook, None)
        if full is None:
            raise KeyError(f"no hook {hook!r}")
        impls = [impl for impl in full.get_hookimpls() if _implements(impl)]
        if not any(impl.plugin_name == name for impl in impls):
            raise KeyError(f"plugin {name!r} has no active implementation of {hook!r}")
        others = [impl.plugin for impl in impls if impl.plugin_name != name]
        caller = loaded.pm.subset_hook_caller(hook, remove_plugins=others)
        loaded.callers[key] = caller
        return caller

    def _call(self, name: str, hook: str, **kwargs: Any) -> object:
        """Plugin ``name``'s answer to ``hook`` (pluggy drops None answers, so [] is None)."""
        results: Sequence[object] = self._caller(name, hook)(**kwargs)
        return results[0] if results else None

    def _isolated(self, name: str, hook: str, **kwargs: Any) -> bool:
        """Call one plugin's ``hook``; a failure is logged and reported as False, never raised."""
        try:
            self._call(name, hook, **kwargs)
        except Exception as exc:
            log.warning("plugin %s failed in %s: %s", name, hook, _describe(exc))
            return False
        return True

    def _each(self, hook: str, company: str | None, **kwargs: Any) -> None:
        for name in self.implementers(hook, company):
            self._isolated(name, hook, **kwargs)

    def __repr__(self) -> str:
        states = ", ".join(f"{info.name}={info.state}" for info in self.infos)
        return f"Plugins({states})"


def load_plugins(
    settings: Settings,
    *,
    entry_points: bool = True,
    builtins: bool = True,
    extra: Sequence[object] = (),
    companies: Companies | None = None,
) -> Plugins:
    """Find every plugin, decide its state, register the active ones (see ``loader``).

    Raises ConfigurationError when ``CALLBRIDGE_CONNECTORS`` names an unknown plugin, and in
    strict mode (``CALLBRIDGE_STRICT_PLUGINS``) when any plugin failed.
    """
    if companies is None:
        companies = load_companies(settings)
    discovery: dict[str, Any] = {"entry_points": entry_points, "builtins": builtins, "extra": extra}
    pm, infos = discover(settings, companies=companies, **discovery)
    plugins = Plugins(pm, infos, companies)
    plugins.discovery = discovery
    return plugins
