"""Companies: one callbridge serving several tenants of a PBX (or of several PBXes).

See docs/companies.md. ``load_companies(settings)`` gives the ``Companies`` registry; the
plugin loader, the ingress, the API and the engine all ask it which company a thing is.
"""

from __future__ import annotations

from .model import CompaniesFile, CompanyConfig, read_companies_file
from .registry import DEFAULT, Companies, Company, load_companies

__all__ = [
    "DEFAULT",
    "Companies",
    "CompaniesFile",
    "Company",
    "CompanyConfig",
    "load_companies",
    "read_companies_file",
]
