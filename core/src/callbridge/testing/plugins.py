"""A plugin manager holding the plugin under test and only the built-ins a test asks for.

Installed connectors (entry points) and ``CALLBRIDGE_PLUGINS`` are what a *deployment* loads;
a test wants its own plugin alone, so that no other connector answers a lookup or logs a call.
It still goes through ``load_plugins``: settings validation, ``configure``, the fallback rule
and pluggy's hook validation all run exactly as in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..plugins.manager import Plugins
    from ..settings import Settings

#: Built-in names accepted by ``make_plugins(builtins=...)``.
BUILTIN_NAMES = ("console", "directory", "webhook")


def builtin(name: str) -> object:
    """A fresh instance of the built-in plugin called ``name``."""
    from ..plugins.loader import BUILTIN_PLUGINS, _resolve

    for target in BUILTIN_PLUGINS:
        if target.partition(":")[0].rsplit(".", 1)[-1] == name:
            obj = _resolve(target)
            return obj() if isinstance(obj, type) else obj
    raise ValueError(f"no built-in plugin {name!r}; known: {', '.join(BUILTIN_NAMES)}")


def make_plugins(
    *plugins: object,
    builtins: Sequence[str] = (),
    settings: Settings | None = None,
) -> Plugins:
    """Load ``plugins`` (objects, modules or classes) plus the chosen built-ins.

    ``settings`` defaults to the core settings read from the environment now. The result is
    the real ``Plugins``: check ``.get(name).state`` and ``.reason`` when a plugin is not
    active, call hooks with its typed methods (``.log_call(name, record)``, ...).
    """
    from ..plugins.manager import load_plugins
    from ..settings import load_settings

    core = settings if settings is not None else load_settings()
    extra = [builtin(name) for name in builtins] + list(plugins)
    return load_plugins(core, entry_points=False, builtins=False, extra=extra)


def plugin_name(plugins: Plugins, plugin: object) -> str:
    """The name the manager gave ``plugin`` (an instance or module handed to it)."""
    for info in plugins.infos:
        if info.plugin is plugin or (isinstance(plugin, type) and type(info.plugin) is plugin):
            return info.name
    fallback = getattr(plugin, "name", None)
    if isinstance(fallback, str):
        return fallback
    raise KeyError(f"{plugin!r} is not among the loaded plugins")
