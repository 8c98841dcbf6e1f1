"""The HTTP service around a plugin, for tests of its routes and of the API it serves.

``AppHarness`` assembles what ``callbridge serve`` assembles (settings with an ingress token
and an API token, a SQLite journal in tmp, the plugins, the engine) and opens a FastAPI
``TestClient`` whose lifespan starts and stops the engine, as in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import FakeClock
from .events import BuiltEvent

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

    from ..engine.engine import Engine
    from ..plugins.manager import Plugins


def _test_client_class() -> type[TestClient]:
    """FastAPI's ``TestClient``, imported without Starlette's warning that its httpx-based
    client is deprecated in favour of "httpx2": nothing a plugin author can act on, and it
    made a freshly generated plugin's first test run print a warning (issue 25)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated"
        )
        from fastapi.testclient import TestClient

    return TestClient


class AppHarness:
    """A running app: ``client`` (TestClient), ``engine``, ``plugins`` and the tokens."""

    def __init__(
        self,
        plugins: Sequence[object],
        tmp_path: Path,
        *,
        builtins: Sequence[str] = (),
        extensions: str = "*",
        clock: FakeClock | None = None,
        settings_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        client_class = _test_client_class()

        from ..assembly import Assembly
        from ..engine.engine import Engine
        from ..journal.sqlite import SqliteJournal
        from ..server.app import create_app
        from ..settings import load_settings
        from .plugins import make_plugins

        self.ingress_token = secrets.token_urlsafe(24)
        self.api_token = secrets.token_urlsafe(24)
        self.settings = load_settings(
            data_dir=tmp_path,
            ingress_token=self.ingress_token,
            server={"api_tokens": [f"{self.api_token}:{extensions}"]},
            **dict(settings_overrides or {}),
        )
        self.plugins: Plugins = make_plugins(*plugins, builtins=builtins, settings=self.settings)
        self.journal = SqliteJournal(tmp_path / "journal.sqlite3")
        engine_args: dict[str, Any] = {"tick_interval": 0.02, "poll_interval": 0.01}
        if clock is not None:
            engine_args["clock"] = clock
        self.engine: Engine = Engine(
            self.settings, journal=self.journal, plugins=self.plugins, **engine_args
        )
        # The parts are the test's own (its plugin objects, quick ticks, a fake clock), wired
        # as ``callbridge.assembly.assemble`` wires them.
        self.assembly = Assembly(
            settings=self.settings,
            journal=self.journal,
            plugins=self.plugins,
            pbx=None,
            engine=self.engine,
        )
        self.app = create_app(self.assembly.services, manage_engine=True)
        self.client: TestClient = client_class(self.app)
        self.client.__enter__()

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization`` header with the API token."""
        return {"Authorization": f"Bearer {self.api_token}"}

    def send_event(self, event: BuiltEvent | Mapping[str, str]) -> Response:
        """GET ``/pbx/events`` with the event's parameters and the ingress token."""
        params = dict(event.params if isinstance(event, BuiltEvent) else event)
        params["token"] = self.ingress_token
        response: Response = self.client.get("/pbx/events", params=params)
        return response

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the engine has handled every event and due delivery."""
        return self.engine.wait_idle(timeout)

    def close(self) -> None:
        """Stop the app (and its engine), close the journal."""
        self.client.__exit__(None, None, None)
        self.assembly.close()

    def __repr__(self) -> str:  # tokens stay out of test output
        return f"AppHarness(plugins={self.plugins!r})"
