"""The directory's record page (``register_routes``) and the link pops carry to it.

The routes are mounted the way the server mounts a plugin's (an ``APIRouter`` under
``/plugins/directory``) on a real FastAPI app, on a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from callbridge.demo import Demo, DemoOptions
from callbridge.models import CallRecord, Outcome
from callbridge.plugins.builtin.directory import DEFAULT_RECORD_URL, DirectoryPlugin
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings
from callbridge.testing import SseReader


@pytest.fixture
def directory(tmp_path: Path) -> DirectoryPlugin:
    return DirectoryPlugin.open(tmp_path / "directory.sqlite3")


@pytest.fixture
def client(directory: DirectoryPlugin) -> Iterator[TestClient]:
    app = FastAPI()
    router = APIRouter(prefix="/plugins/directory")
    directory.register_routes(router)
    app.include_router(router)
    with TestClient(app) as http:
        yield http


def test_default_record_url_points_at_the_page(directory: DirectoryPlugin) -> None:
    contact_id = directory.add_contact("Anna Verdi", ["+39 02 1111 2222"])
    contact = directory.lookup_contact("02 1111 2222", None)  # type: ignore[arg-type]
    assert contact is not None
    assert DEFAULT_RECORD_URL == "/plugins/directory/contacts/{id}"
    assert contact.url == f"/plugins/directory/contacts/{contact_id}"


def test_default_and_overridden_url_through_the_plugin_manager(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Off by default (the page has no authentication): no link, no route.
    plugins = load_plugins(settings(), entry_points=False)
    directory = plugins.get("directory").plugin
    assert isinstance(directory, DirectoryPlugin)
    contact_id = directory.add_contact("Anna Verdi", ["+39 02 1111 2222"])
    found = plugins.lookup_contact("directory", "0211112222", None)
    assert found.url is None
    router = APIRouter()
    assert plugins.register_routes(lambda name: router) == [router]
    assert router.routes == []

    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_RECORD_PAGES", "true")
    plugins = load_plugins(settings(), entry_points=False)
    found = plugins.lookup_contact("directory", "0211112222", None)
    assert found.url == f"/plugins/directory/contacts/{contact_id}"
    assert "directory" in plugins.implementers("register_routes")

    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_RECORD_URL", "https://crm.example/c/{id}")
    plugins = load_plugins(settings(), entry_points=False)
    found = plugins.lookup_contact("directory", "0211112222", None)
    assert found.url == f"https://crm.example/c/{contact_id}"


def test_page_shows_the_contact_and_its_last_activities(
    directory: DirectoryPlugin, client: TestClient, make_record: Callable[..., CallRecord]
) -> None:
    contact_id = directory.add_contact(
        "Mario Rossi",
        ["06 1234 5678", "347 123 4567"],
        company="Rossi Impianti Srl",
        owner_extension="205",
    )
    other = directory.add_contact("Someone Else", ["02 8765 4321"])
    contact = directory.lookup_contact("0612345678", None)  # type: ignore[arg-type]
    assert contact is not None
    directory.log_call(make_record(contacts={"directory": contact}))
    directory.log_call(
        make_record(
            contacts={"directory": contact},
            key="c1:0000AB13",
            user_call_id="0000AB13",
            outcome=Outcome.MISSED,
            answer_at=None,
            extension="207",
        )
    )
    stranger = directory.lookup_contact("0287654321", None)  # type: ignore[arg-type]
    assert stranger is not None
    directory.log_call(
        make_record(contacts={"directory": stranger}, key="c1:0000FF01", extension="299")
    )

    answer = client.get(f"/plugins/directory/contacts/{contact_id}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = answer.text
    assert '<html lang="en">' in page
    assert '<h1 id="contact-name">Mario Rossi</h1>' in page
    assert "Rossi Impianti Srl" in page
    assert 'href="tel:+390612345678"' in page and "+393471234567" in page
    assert '<dd id="contact-owner">205</dd>' in page
    # Both of its calls, newest first; the other contact's call is not there.
    assert page.count("<tbody><tr>") == 1 and page.count("<tr>") == 3
    assert page.index(">missed<") < page.index(">answered<")
    assert ">207<" in page and ">201<" in page
    assert ">299<" not in page
    assert f"/contacts/{other}" not in page


def test_page_without_activities(directory: DirectoryPlugin, client: TestClient) -> None:
    contact_id = directory.add_contact("Nuovo Cliente", ["06 5555 1234"])
    answer = client.get(f"/plugins/directory/contacts/{contact_id}")
    assert answer.status_code == 200
    assert "No call logged yet." in answer.text
    assert "<table>" not in answer.text


def test_every_value_is_escaped(directory: DirectoryPlugin, client: TestClient) -> None:
    contact_id = directory.add_contact(
        "<script>alert(1)</script>",
        ["06 1234 5678"],
        company='"><img src=x onerror=alert(2)>',
        owner_extension="<b>205</b>",
        email='a"onmouseover="x@example.org',
    )
    page = client.get(f"/plugins/directory/contacts/{contact_id}").text
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert 'a"onmouseover' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b&gt;205&lt;/b&gt;" in page


@pytest.mark.parametrize(
    "contact_id", ["999", "0", "abc", "1e3", "99999999999999999999999", "%3Cx%3E"]
)
def test_unknown_contact_is_404(
    directory: DirectoryPlugin, client: TestClient, contact_id: str
) -> None:
    directory.add_contact("Mario Rossi", ["06 1234 5678"])
    answer = client.get(f"/plugins/directory/contacts/{contact_id}")
    assert answer.status_code == 404
    assert "Contact not found" in answer.text
    assert "<x>" not in answer.text
    assert "Mario Rossi" not in answer.text


def test_demo_pops_link_to_the_page_served_by_callbridge() -> None:
    """The real service (the demo's assembly): the pop's link opens the contact's page."""
    with Demo(DemoOptions(speed=8.0)) as demo:
        reader = SseReader(demo.url, "201", demo.api_token).start()
        try:
            demo.sim.incoming_call("+39 011 555 0101", "201", caller_name="Francesca Romano")
            messages = reader.wait_for(lambda ms: any(m.event == "pop" for m in ms), "a pop")
        finally:
            reader.close()
        pop = next(m for m in messages if m.event == "pop")
        contact = pop.data["contacts"]["directory"]
        # Under the instance's routes: ``directory@acme`` when the demo runs two companies.
        instance = "directory@acme" if demo.companies else "directory"
        assert contact["url"] == f"/plugins/{instance}/contacts/{contact['record_id']}"
        page = httpx.get(f"{demo.url}{contact['url']}", timeout=30)
        assert page.status_code == 200
        assert '<h1 id="contact-name">Francesca Romano</h1>' in page.text
        missing = httpx.get(f"{demo.url}/plugins/directory/contacts/424242", timeout=30)
        assert missing.status_code == 404


def test_page_links_a_calls_recording_and_nothing_else(
    directory: DirectoryPlugin, client: TestClient, make_record: Callable[..., CallRecord]
) -> None:
    contact_id = directory.add_contact("Mario Rossi", ["06 1234 5678"])
    contact = directory.lookup_contact("0612345678", None)  # type: ignore[arg-type]
    assert contact is not None
    link = "https://pbx.example/rec/0000AB12.wav?a=1&b=2"
    recorded = make_record(contacts={"directory": contact})
    directory.log_call(recorded.model_copy(update={"recording": "x", "recording_url": link}))
    hostile = make_record(
        contacts={"directory": contact}, key="c1:0000AB13", user_call_id="0000AB13"
    )
    bad = "javascript:alert(1)"
    directory.log_call(hostile.model_copy(update={"recording": "y", "recording_url": bad}))
    page = client.get(f"/plugins/directory/contacts/{contact_id}").text
    assert '<a href="https://pbx.example/rec/0000AB12.wav?a=1&amp;b=2"' in page
    assert 'href="javascript' not in page and ">javascript:alert(1)<" in page
