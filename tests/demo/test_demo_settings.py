"""The demo's settings come from its arguments only: no ``CALLBRIDGE_*`` variable, no ``.env``."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.demo import DEMO_AGENTS, IsolatedSettings, demo_settings
from callbridge.demo.directory import DemoDirectory
from callbridge.demo.runner import assemble

API = "demo-api-secret-0123456789"
INGRESS = "demo-ingress-secret-0123456789"


def _settings(tmp_path: Path) -> IsolatedSettings:
    settings = demo_settings(
        tmp_path, soap_url="http://127.0.0.1:1/soap", ingress_token=INGRESS, api_token=API
    )
    assert isinstance(settings, IsolatedSettings)
    return settings


def test_environment_and_dotenv_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CALLBRIDGE_DEFAULT_REGION=XX\nCALLBRIDGE_LOG_LEVEL=NOPE\n")
    monkeypatch.setenv("CALLBRIDGE_JOURNAL", "redis://192.0.2.1/0")
    monkeypatch.setenv("CALLBRIDGE_PLUGINS", "/nonexistent.py")
    monkeypatch.setenv("CALLBRIDGE_STRICT_PLUGINS", "true")
    monkeypatch.setenv("CALLBRIDGE_PBX__SOAP_URL", "http://192.0.2.1/soap")
    monkeypatch.setenv("CALLBRIDGE_SERVER__PORT", "not-a-port")
    settings = _settings(tmp_path / "data")
    assert settings.journal.get_secret_value() == "sqlite"
    assert settings.plugins == [] and settings.strict_plugins is False
    assert settings.data_dir == tmp_path / "data"
    assert settings.pbx.soap_url == "http://127.0.0.1:1/soap"
    assert settings.default_region == "IT"
    assert settings.pbx.agent_map() == DEMO_AGENTS


def test_only_the_demo_directory_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_ENABLED", "false")
    monkeypatch.setenv("CALLBRIDGE_DIRECTORY_DATABASE", str(tmp_path / "elsewhere.sqlite3"))
    settings = _settings(tmp_path)
    directory = DemoDirectory.seeded(tmp_path / "directory.sqlite3")
    running = assemble(settings, directory)
    try:
        plugins = running.services.plugins
        assert plugins is not None
        assert [info.name for info in plugins.active()] == ["directory"]
        assert plugins.implementers("log_call") == ["directory"]
    finally:
        running.close()
    assert not (tmp_path / "elsewhere.sqlite3").exists()
    assert len(directory.list_contacts()) >= 10


def test_tokens_stay_out_of_reprs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert API not in text and INGRESS not in text
    assert settings.server.api_tokens[0].get_secret_value() == f"{API}:201|202|203|204"
