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


class Plugins:
    """The loaded plugins: pluggy's manager (active ones only) and every candidate's info."""

    def __init__(
        self, pm: pluggy.PluginManager, infos: list[PluginInfo], companies: Companies | None = None
    ) -> None:
        self.pm = pm
        self.infos = infos
        #: The companies the plugins serve: the engine asks it an event's company.
        self.companies = companies or Companies([], single=True)
        #: Hook callers narrowed to one plugin, by (hook, plugin name); registration is over
        #: once a ``Plugins`` exists, so they never go stale.
        self._callers: dict[tuple[str, str], pluggy.HookCaller] = {}

    # -- what is loaded ------------------------------------------------------------------------
    def active(self, company: str | None = None) -> list[PluginInfo]:
        """Active plugins (of ``company``, when given), in registration order (fallbacks last)."""
        by_name = {
            info.name: info
            for info in self.infos
            if info.state == ACTIVE and (company is None or info.company == company)
        }
        return [by_name[name] for name, _ in self.pm.list_name_plugin() if name in by_name]

    def company_of(self, name: str) -> str | None:
        """The company plugin instance ``name`` serves (None when there is no such plugin)."""
        for info in self.infos:
            if info.name == name:
                return info.company
        return None

    def get(self, name: str) -> PluginInfo:
        """The info of the plugin called ``name`` (KeyError when there is none)."""
        for info in self.infos:
            if info.name == name:
                return info
        raise KeyError(name)

    def implementers(self, hook: str, company: str | None = None) -> list[str]:
        """Names of the active plugins that implement ``hook``, in registration order.

        With ``company``, only that company's instances: the engine passes the call's company
        so that a call reaches its own company's CRMs only. Fallback plugins are registered
        after the others, so they come last. A plugin that only wraps the hook (a tracing
        wrapper) does not implement it.
        """
        caller = getattr(self.pm.hook, hook, None)
        if caller is None:
            return []
        names = {impl.plugin_name for impl in caller.get_hookimpls() if _implements(impl)}
        return [info.name for info in self.active(company) if info.name in names]

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

    def pbx_event(self, event: AnyEvent, company: str | None) -> None:
        """Every plugin of ``company`` observes a journaled PBX event (None: no plugin, the
        event belongs to no configured company)."""
        if company is not None:
            self._each("pbx_event", company, event=event)

    def startup(self, context: Context | None) -> None:
        """Every plugin opens its clients."""
        self._each("startup", None, context=context)

    def shutdown(self, context: Context | None) -> None:
        """Every plugin closes its clients."""
        self._each("shutdown", None, context=context)

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
        caller = self._callers.get(key)
        if caller is not None:
            return caller
        full = getattr(self.pm.hook, hook, None)
        if full is None:
            raise KeyError(f"no hook {hook!r}")
        impls = [impl for impl in full.get_hookimpls() if _implements(impl)]
        if not any(impl.plugin_name == name for impl in impls):
            raise KeyError(f"plugin {name!r} has no active implementation of {hook!r}")
        others = [impl.plugin for impl in impls if impl.plugin_name != name]
        caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
        self._callers[key] = caller
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
    pm, infos = discover(
        settings, entry_points=entry_points, builtins=builtins, extra=extra, companies=companies
    )
    return Plugins(pm, infos, companies)
