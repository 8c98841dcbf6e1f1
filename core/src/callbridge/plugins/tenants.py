"""Plugins per company: one connector instance for each company that configures it.

With a companies file, a plugin is active only for the companies that list it, and each of
them gets its own instance (its own client, credentials, rate limiter, ledger), registered
with pluggy as ``NAME@COMPANY``. Its settings come from the company's table in the file
(``[companies.acme.plugins.hubspot]``), never from the plugin's own environment variables,
which would hand one company's CRM token to every other. A plugin needs no code for this:
the core makes a fresh instance of its class and validates the table with its
``settings_class``, as it validates the environment for a single company.
"""

from __future__ import annotations

import contextlib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from ..companies.files import resolve_files
from ..companies.model import explain_file

if TYPE_CHECKING:
    from ..companies import Companies
    from ..models import CrmContext
    from ..settings import Settings
    from .loader import PluginInfo


def instance_name(plugin: str, company: str) -> str:
    """``hubspot@acme``: the pluggy name of ``company``'s instance of ``plugin``."""
    return f"{plugin}@{company}"


def base_name(name: str) -> str:
    """``hubspot`` for ``hubspot@acme`` (and for ``hubspot``)."""
    return name.partition("@")[0]


def plain(context: CrmContext | None) -> CrmContext | None:
    """``context`` naming its connector by plugin name (``hubspot``, not ``hubspot@acme``).

    A plugin finds its records by its own name (``wrapup.record_for(self.name)``); the
    company is the call's, so the instance part of a name says nothing more.
    """
    if context is None or "@" not in context.connector:
        return context
    return context.model_copy(update={"connector": base_name(context.connector)})


def _tell_instance_name(plugin: object, name: str) -> None:
    """Set ``instance_name`` (``directory@acme``) on an instance that wants it: a plugin whose
    pages live under ``/plugins/<name>`` links to its own company's routes."""
    if plugin is not None and hasattr(plugin, "instance_name"):
        with contextlib.suppress(AttributeError):  # read-only: the plugin keeps its own
            plugin.instance_name = name


def _fresh(plugin: object) -> object:
    """Another instance of ``plugin``'s class; a module has no class to instantiate."""
    if isinstance(plugin, ModuleType) or inspect.isclass(plugin):
        raise TypeError(
            "a module plugin has one instance only: make the plugin a class to serve "
            "several companies"
        )
    return type(plugin)()


def expand(infos: list[PluginInfo], companies: Companies) -> list[PluginInfo]:
    """One info per (plugin, company listing it); unlisted plugins disabled, unknown failed."""
    from .loader import DISABLED, FAILED, PluginInfo

    out: list[PluginInfo] = []
    known = {info.name: info for info in infos}
    for info in infos:
        listing = [c for c in companies if c.plugins is not None and info.name in c.plugins]
        if info.state != "active" or not listing:
            info.company = "-"  # no company's
            if info.state == "active":
                info.state = DISABLED
                info.reason = "not listed under any company of CALLBRIDGE_COMPANIES_FILE"
            out.append(info)
            continue
        for index, company in enumerate(listing):
            table = company.plugins[info.name] if company.plugins is not None else {}
            each = PluginInfo(
                instance_name(info.name, company.name),
                info.version,
                info.source,
                info.state,
                None,
                list(info.hooks),
                info.plugin,
                company=company.name,
                table=dict(table),
            )
            if index:
                try:
                    each.plugin = _fresh(info.plugin)
                except Exception as exc:
                    each.plugin = None
                    each.state, each.reason = FAILED, f"{type(exc).__name__}: {exc}"
            _tell_instance_name(each.plugin, each.name)
            out.append(each)
    for company in companies:
        for name in company.plugins or {}:
            if name not in known:
                out.append(
                    PluginInfo(
                        instance_name(name, company.name),
                        None,
                        "companies file",
                        FAILED,
                        f"companies.{company.name}.plugins.{name}: no plugin called {name!r}"
                        f" is installed; known: {', '.join(sorted(known)) or 'none'}",
                        [],
                        company=company.name,
                    )
                )
    return out


def table_settings(cls: type[BaseSettings], info: PluginInfo) -> BaseSettings:
    """The plugin's settings from its company's table only (no environment, no .env).

    ``model_validate`` skips pydantic-settings' sources, so a ``CALLBRIDGE_HUBSPOT_*``
    variable meant for a single-company set-up never leaks into a company's instance.
    Secret fields may be given as ``X_file``.
    """
    where = f"companies.{info.company}.plugins.{base_name(info.name)}"
    values = resolve_files(info.table or {}, cls.model_fields, where)
    return cls.model_validate(values, by_alias=True, by_name=True)


def explain_table(exc: ValidationError, info: PluginInfo) -> str:
    """Each problem as ``companies.acme.plugins.hubspot.access_token (CALLBRIDGE_...)``."""
    prefix = ("companies", info.company, "plugins", base_name(info.name))
    return explain_file(exc, prefix)


def core_for(info: PluginInfo, core: Settings, companies: Companies | None) -> Settings:
    """The core settings a company's plugin sees: its own data directory and PBX settings.

    A plugin that keeps files under ``core.data_dir`` (the directory database) then keeps
    each company's apart without a setting of its own.
    """
    if info.table is None or companies is None or info.company not in companies:
        return core
    company = companies.get(info.company)
    update: dict[str, Any] = {"data_dir": company.data_dir, "pbx": company.pbx_settings}
    return core.model_copy(update=update)
