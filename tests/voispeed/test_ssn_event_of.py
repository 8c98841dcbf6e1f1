"""``ssn_event_of``: the parameter's text to an ``SsnEvent``, exactly as a string compare would.

The MySQL source and sink and the SERI translation pick what to do by the member; a code
written another way (``" 16"``, ``"016"``) must stay unknown there, as it was when they
compared raw strings.
"""

from __future__ import annotations

import pytest

from callbridge.voispeed.codes import SsnEvent, ssn_event_of


@pytest.mark.parametrize("code", list(SsnEvent))
def test_each_code_is_read_from_its_decimal_text(code: SsnEvent) -> None:
    assert ssn_event_of(str(int(code))) is code


@pytest.mark.parametrize("text", [None, "", "3", "22", " 16", "016", "16.0", "x"])
def test_anything_else_is_unknown(text: str | None) -> None:
    assert ssn_event_of(text) is None
