"""The versions of the core and of every installed callbridge package, for support requests.

``callbridge --version`` prints them and ``/healthz`` returns them: "which versions?" is the
first question about any fault, and the answer has to include the connectors, which are
separate distributions installed next to the core. A distribution counts when it declares a
plugin (entry point group ``callbridge``) or a command (``callbridge.commands``), so a
connector is listed even when its settings are missing and it is not active.
"""

from __future__ import annotations

import importlib.metadata
import sys

from .plugins.manager import ENTRY_POINT_GROUP

#: Entry point groups that mark a distribution as a callbridge package.
GROUPS = (ENTRY_POINT_GROUP, "callbridge.commands")


def installed_versions() -> dict[str, str]:
    """``{distribution: version}``: the core first, then the others sorted by name."""
    try:
        core = importlib.metadata.version("callbridge")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a bare source tree
        core = "0+unknown"
    found: dict[str, str] = {}
    for group in GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist
            if dist is None:  # pragma: no cover - entry points always come from a dist
                continue
            name = dist.metadata["Name"]
            if name and name != "callbridge":
                found.setdefault(name, dist.version)
    return {"callbridge": core, **dict(sorted(found.items()))}


def version_report() -> str:
    """The text of ``callbridge --version``: core and Python, then one line per package."""
    versions = installed_versions()
    python = ".".join(str(part) for part in sys.version_info[:3])
    lines = [f"callbridge {versions.pop('callbridge')} (Python {python})"]
    lines.extend(f"  {name} {version}" for name, version in versions.items())
    return "\n".join(lines)
