"""What a plugin may declare besides its hooks: a name and a settings class.

A plugin is any object (a module or an instance) with ``@hookimpl`` functions. Optionally:

- ``name``: how callbridge calls it (default: the entry point or module name);
- ``settings_class``: a ``PluginSettings`` subclass with its own ``env_prefix``; the core
  validates it at start-up and hands the instance to ``configure``;
- ``configure(settings)``: receives the validated settings (or is not called when the
  plugin has no settings class).

A plugin whose settings variables are all absent is "not configured" and stays inactive; one
whose variables are present but invalid has "failed", with the message naming each variable.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class PluginSettings(BaseSettings):
    """Base for plugin settings: set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")
