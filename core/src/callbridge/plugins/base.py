"""What a plugin may declare besides its hooks: a name and a settings class.

A plugin is any object (a module or an instance) with ``@hookimpl`` functions. Optionally:

- ``name``: how callbridge calls it (default: the entry point or module name);
- ``version``: shown by ``callbridge plugins`` (default: its distribution's version);
- ``settings_class``: a ``PluginSettings`` subclass with its own ``env_prefix``; the core
  validates it at start-up and hands the instance to ``configure``;
- ``configure(settings)``: receives the validated settings (``None`` when the plugin has no
  settings class). A ``configure(settings, core)`` that names a ``core`` parameter also gets
  the core ``Settings`` (data directory, default region). It may raise ``NotConfigured`` to
  stay inactive with a reason, or any other exception to fail;
- ``fallback = True``: only active while no other active plugin writes activities
  (implements ``log_call``), e.g. the console printer;
- ``embedded_default = True``: an always-on built-in (the local directory) that does not
  count as "something else is configured" for fallback plugins.

A plugin whose settings variables are all absent is "not configured" and stays inactive; one
whose variables are present but invalid has "failed", with the message naming each variable.
A settings field ``enabled: bool | None`` is honoured by the core: ``false`` disables the
plugin, ``true`` keeps a fallback plugin active even when others log calls.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import CallbridgeError


class PluginSettings(BaseSettings):
    """Base for plugin settings: set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")


class NotConfigured(CallbridgeError):
    """Raised by ``configure`` when the plugin has nothing to do with these settings."""
