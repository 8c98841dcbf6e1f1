"""callbridge: link a VOIspeed PBX to CRMs.

The public API for plugin authors is what this module exports (``__all__``), and the test kit
``callbridge.testing``; everything else is internal and may change in any release. The
connectors and examples shipped with callbridge import nothing else (an import-linter
contract in ``make lint`` keeps it so). See docs/plugins.md, "The public API".
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .activities import agent_keys, call_parties, email_keys, summary_lines
from .context import Context
from .crm import (
    SIGNATURE_PREFIX,
    number_forms,
    pick_contact,
    same_call,
    signature_line,
)
from .engine.cache import MISSING, TTLCache
from .errors import (
    CallbridgeError,
    ConfigurationError,
    PermanentError,
    PluginError,
    RetryLater,
    raise_for_crm_status,
    retry_after_seconds,
    retryable_status,
)
from .hookspecs import hookimpl
from .ledger import ActivityLedger, LazyLedger, LedgerEntry
from .models import (
    ActivityRef,
    Call,
    CallRecord,
    CallState,
    Contact,
    ContactDraft,
    CrmContext,
    Direction,
    HungUpBy,
    LookupStatus,
    Originate,
    Outcome,
    ScreenPop,
    WrapUp,
)
from .numbers import digits, is_extension, national_digits, same_number, to_e164
from .plugins.base import NotConfigured, PluginSettings
from .settings import Settings, default_data_dir
from .settings import load as read_settings
from .settings_types import CommaList, KeyValueMap, OptionalRegion, Region

try:
    __version__ = version("callbridge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "MISSING",
    "SIGNATURE_PREFIX",
    "ActivityLedger",
    "ActivityRef",
    "Call",
    "CallRecord",
    "CallState",
    "CallbridgeError",
    "CommaList",
    "ConfigurationError",
    "Contact",
    "ContactDraft",
    "Context",
    "CrmContext",
    "Direction",
    "HungUpBy",
    "KeyValueMap",
    "LazyLedger",
    "LedgerEntry",
    "LookupStatus",
    "NotConfigured",
    "OptionalRegion",
    "Originate",
    "Outcome",
    "PermanentError",
    "PluginError",
    "PluginSettings",
    "Region",
    "RetryLater",
    "ScreenPop",
    "Settings",
    "TTLCache",
    "WrapUp",
    "__version__",
    "agent_keys",
    "call_parties",
    "default_data_dir",
    "digits",
    "email_keys",
    "hookimpl",
    "is_extension",
    "national_digits",
    "number_forms",
    "pick_contact",
    "raise_for_crm_status",
    "read_settings",
    "retry_after_seconds",
    "retryable_status",
    "same_call",
    "same_number",
    "signature_line",
    "summary_lines",
    "to_e164",
]
