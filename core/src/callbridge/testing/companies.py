"""Companies for tests: write a companies file, with fresh tokens, and point callbridge at it.

A plugin author checks that the plugin works per company (two instances, each with its own
settings, each seeing only its company's calls) without writing TOML by hand::

    def test_two_companies(companies, events):
        acme = companies.add("acme", "1", plugins={"myplugin": {"api_key": "a"}})
        beta = companies.add("beta", "2", plugins={"myplugin": {"api_key": "b"}})
        companies.write()  # sets CALLBRIDGE_COMPANIES_FILE
        with LiveService(extra_plugins=[MyPlugin]) as service:
            httpx.get(service.url + "/pbx/events", params={**params, "token": acme.ingress_token})

Every company gets a random ingress token and an API token for all its extensions.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import CallbridgeEnv


@dataclass
class TestCompany:
    """One company of the file, with the tokens the test uses."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    name: str
    company_id: str
    ingress_token: str = field(repr=False)
    api_token: str = field(repr=False)
    #: The ``[companies.NAME]`` table as written (tokens included).
    table: dict[str, Any] = field(repr=False)

    @property
    def api_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <api token>``."""
        return {"Authorization": f"Bearer {self.api_token}"}


def _value(value: Any) -> str:
    """A TOML value: strings, numbers, booleans and lists of them (JSON spells them alike)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for nested tables of plain values (enough for companies files)."""
    lines = [
        f"{key} = {_value(value)}" for key, value in data.items() if not isinstance(value, dict)
    ]
    out = "\n".join(lines)
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}.{key}" if prefix else key
            body = to_toml(value, name)
            out += f"\n\n[{name}]\n{body}" if body.strip() else f"\n\n[{name}]"
    return out.strip() + "\n"


class CompaniesFile:
    """Companies added by a test, written as one file that ``CALLBRIDGE_COMPANIES_FILE`` names."""

    def __init__(self, env: CallbridgeEnv, path: Path) -> None:
        self.env = env
        self.path = path
        self.companies: dict[str, TestCompany] = {}

    def add(
        self,
        name: str,
        company_id: str,
        *,
        plugins: Mapping[str, Mapping[str, Any]] | Sequence[str] = (),
        agents: Sequence[str] = ("201",),
        pbx: str = "default",
        **table: Any,
    ) -> TestCompany:
        """A company with fresh tokens; ``plugins`` name -> settings table (or names only)."""
        ingress = f"{name}-ingress-{secrets.token_urlsafe(12)}"
        api = f"{name}-api-{secrets.token_urlsafe(16)}"
        tables = dict(plugins) if isinstance(plugins, Mapping) else {p: {} for p in plugins}
        body: dict[str, Any] = {
            "company_id": company_id,
            "pbx": pbx,
            "ingress_token": ingress,
            "api_tokens": [f"{api}:*"],
            **table,
            "pbx_client": {
                "agents": [f"{ext}=auth-{ext}@{name}" for ext in agents],
                **table.pop("pbx_client", {}),
            },
            "plugins": {key: dict(value) for key, value in tables.items()},
        }
        company = TestCompany(name, company_id, ingress, api, body)
        self.companies[name] = company
        return company

    def __getitem__(self, name: str) -> TestCompany:
        return self.companies[name]

    def write(self) -> Path:
        """Write the file and set ``CALLBRIDGE_COMPANIES_FILE``; return its path."""
        data = {"companies": {name: c.table for name, c in self.companies.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(to_toml(data), encoding="utf-8")
        self.env.set(CALLBRIDGE_COMPANIES_FILE=str(self.path))
        return self.path

    def remove(self, name: str) -> None:
        """Forget a company (``write`` again to apply)."""
        del self.companies[name]

    def __repr__(self) -> str:  # tokens stay out of test output
        return f"CompaniesFile({', '.join(self.companies)})"
