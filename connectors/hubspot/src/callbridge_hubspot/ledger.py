"""The engagement ledger: the core's ``ActivityLedger`` (it began here, see its docstring).

Kept as a module so that ``from callbridge_hubspot.ledger import Ledger`` goes on working.
"""

from __future__ import annotations

from callbridge import ActivityLedger as Ledger
from callbridge import LedgerEntry as Entry

__all__ = ["Entry", "Ledger"]
