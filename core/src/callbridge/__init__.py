"""callbridge: link a VOIspeed PBX to CRMs.

The public API for plugin authors is re-exported here; everything else is internal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .context import Context
from .errors import (
    CallbridgeError,
    ConfigurationError,
    PermanentError,
    PluginError,
    RetryLater,
)
from .hookspecs import hookimpl
from .models import (
    ActivityRef,
    Call,
    CallRecord,
    CallState,
    Contact,
    CrmContext,
    Direction,
    HungUpBy,
    LookupStatus,
    Originate,
    Outcome,
    ScreenPop,
)

try:
    __version__ = version("callbridge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ActivityRef",
    "Call",
    "CallRecord",
    "CallState",
    "CallbridgeError",
    "ConfigurationError",
    "Contact",
    "Context",
    "CrmContext",
    "Direction",
    "HungUpBy",
    "LookupStatus",
    "Originate",
    "Outcome",
    "PermanentError",
    "PluginError",
    "RetryLater",
    "ScreenPop",
    "__version__",
    "hookimpl",
]
