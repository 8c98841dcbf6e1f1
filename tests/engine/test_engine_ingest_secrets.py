"""``Engine.ingest`` keeps the ingress token out of the journal, as the HTTP ingress does.

Whoever calls it with the parameters of a callback (the demo, tests, embedders) may pass them
whole, token included; the stored ``raw`` parameters must not keep it.
"""

from __future__ import annotations

from pathlib import Path

from engine_helpers import incoming, make_engine


def test_the_token_is_not_journaled(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    try:
        engine.ingest({**incoming("00000001"), "token": "ingress-secret-0123456789"})
        (stored,) = engine.journal.events_after(0)
        assert "token" not in stored.raw
        assert "token" not in stored.event.params
        assert stored.raw["call_id"] == "00000001"
    finally:
        engine.journal.close()
