"""The earlier home of ``FakeCrm`` (deprecated): the kit's one fake-service base is
``FakeHttpService`` in ``callbridge.testing.fake_http``; ``FakeCrm`` is that class."""

from __future__ import annotations

from .fake_http import CrmRefusal, FakeAnswer, FakeCrm, FakeRequest, Fault

__all__ = ["CrmRefusal", "FakeAnswer", "FakeCrm", "FakeRequest", "Fault"]
