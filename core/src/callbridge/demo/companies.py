"""The two-company demo: ACME and Globex on one simulated PBX, each with its own directory.

VOIspeed hosts many companies on one PBX; callbridge keeps them apart (issue 15). The demo
shows it: the simulator hosts ACME (company id 1, extensions 201-204) and Globex (company
id 2, extensions 301-303); the demo writes a companies file (docs/companies.md's format)
giving each its own ingress token, API token, PBX account and ``directory`` instance with
its own database; each company's calls must pop and be logged in its own directory only
(``expect.foreign_activities``).

It needs the companies loader (``callbridge.companies``). Without it the demo runs one
company, as before; ``companies_available()`` says which.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..plugins.builtin.directory import DirectoryPlugin
from ..sim.model import DEFAULT_PASSWORD
from ..sim.scenarios import Scenario, builtin_scenarios, company_scenarios
from .settings import DEMO_AGENTS, DEMO_PBX_USER, new_token

#: Globex's agents (docs/simulator.md, "A second company"): extension -> PBX login.
GLOBEX_AGENTS: dict[str, str] = {
    "301": "auth-hank@globex",
    "302": "auth-homer@globex",
    "303": "auth-frank@globex",
}

#: Globex's customers, so that its pops show names (numbers of its scenarios).
GLOBEX_CONTACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Marge Bouvier", "Bouvier Travel", ("+39 06 9876 5432",)),
    ("Ned Flanders", "Leftorium", ("+39 06 5555 0101",)),
    ("Lionel Hutz", "Hutz Law", ("+39 06 5555 0202",)),
)


@dataclass(frozen=True)
class DemoCompany:
    """One company of the demo: who it is on the PBX and the tokens the demo made for it."""

    name: str
    company_id: int
    agents: dict[str, str]
    pbx_user: str
    ingress_token: str = field(default_factory=lambda: new_token("demo-ingress"), repr=False)
    api_token: str = field(default_factory=lambda: new_token("demo-api"), repr=False)


def companies_available() -> bool:
    """Whether this callbridge can serve several companies (has the companies loader)."""
    spec = importlib.util.find_spec("callbridge.companies")
    # A namespace package (a leftover folder of bytecode) is not the loader.
    return spec is not None and spec.origin is not None


def demo_companies(ingress_token: str, api_token: str) -> tuple[DemoCompany, DemoCompany]:
    """ACME (keeping the demo's own tokens, so its panel URL reads as before) and Globex."""
    acme = DemoCompany("acme", 1, DEMO_AGENTS, DEMO_PBX_USER, ingress_token, api_token)
    globex = DemoCompany("globex", 2, GLOBEX_AGENTS, "auth-callbridge@globex")
    return acme, globex


def companies_toml(
    companies: tuple[DemoCompany, ...], data_dir: Path, seri_token: str | None = None
) -> str:
    """The companies file for ``companies`` (the format of docs/companies.md); each has its
    own directory database under ``data_dir``, and the simulated SERI module's command token
    when the demo speaks SERI (a company's credentials are never taken from the shared
    ``CALLBRIDGE_PBX__*``)."""
    lines: list[str] = []
    for company in companies:
        prefix = f"companies.{company.name}"
        agents = [f"{ext}={login}" for ext, login in company.agents.items()]
        database = data_dir / f"{company.name}-directory.sqlite3"
        lines += [
            f"[{prefix}]",
            f'company_id = "{company.company_id}"',
            f"ingress_token = {json.dumps(company.ingress_token)}",
            f"api_tokens = [{json.dumps(company.api_token + ':' + '|'.join(company.agents))}]",
            f"[{prefix}.pbx_client]",
            f"user = {json.dumps(company.pbx_user)}",
            f"password = {json.dumps(DEFAULT_PASSWORD)}",
            f"agents = {json.dumps(agents)}",
            *([f"seri_token = {json.dumps(seri_token)}"] if seri_token else []),
            f"[{prefix}.plugins.directory]",
            f"database = {json.dumps(str(database))}",
            "",
        ]
    return "\n".join(lines)


def write_companies_file(
    companies: tuple[DemoCompany, ...], data_dir: Path, seri_token: str | None = None
) -> Path:
    """Write the companies file into ``data_dir`` (readable by its owner only: tokens)."""
    path = data_dir / "companies.toml"
    path.touch(mode=0o600)
    path.write_text(companies_toml(companies, data_dir, seri_token), encoding="utf-8")
    return path


def seed(directory: DirectoryPlugin, company: DemoCompany) -> None:
    """The company's sample contacts: ACME's are the directory's own samples."""
    if company.company_id == 1:
        directory.seed_sample_contacts()
    elif not directory.list_contacts():
        for name, firm, numbers in GLOBEX_CONTACTS:
            directory.add_contact(name, numbers, company=firm)


def demo_scenarios(companies: int) -> list[Scenario]:
    """The scenarios the demo plays: the second company's too when it runs two."""
    return builtin_scenarios() + (company_scenarios() if companies > 1 else [])


def directory_instance(plugins: Any, company: str) -> DirectoryPlugin | None:
    """The ``directory`` instance the plugin manager made for ``company`` (``directory@NAME``)."""
    try:
        info = plugins.get(f"directory@{company}")
    except (KeyError, LookupError):
        return None
    plugin = getattr(info, "plugin", None)
    return plugin if isinstance(plugin, DirectoryPlugin) else None
