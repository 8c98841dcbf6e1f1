"""The Call Center definition file and the ``callbridge salesforce`` command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from callbridge.testing import cli_main
from callbridge_salesforce.settings import ENV_PREFIX


def _items(xml: str) -> dict[str, str]:
    root = ET.fromstring(xml)
    assert root.tag == "callCenter"
    section = root.find("section")
    assert section is not None
    assert section.get("name") == "reqGeneralInfo"
    return {item.get("name", ""): item.text or "" for item in section.findall("item")}


def test_call_center_command_prints_the_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}PUBLIC_URL", "https://cb.example.com/")
    monkeypatch.setenv(f"{ENV_PREFIX}CALL_CENTER_DISPLAY_NAME", "Centralino & CRM")
    result = CliRunner().invoke(cli_main, ["salesforce", "call-center"])
    assert result.exit_code == 0, result.output
    items = _items(result.output)
    assert items == {
        "reqInternalName": "CallbridgeOpenCTI",
        "reqDisplayName": "Centralino & CRM",
        "reqAdapterUrl": "https://cb.example.com/plugins/salesforce/softphone",
        "reqUseApi": "true",
        "reqSoftphoneHeight": "400",
        "reqSoftphoneWidth": "300",
        "reqSalesforceCompatibilityMode": "Lightning",
    }


def test_call_center_option_and_file(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path)) / "cc.xml"
    result = CliRunner().invoke(
        cli_main, ["salesforce", "call-center", "--public-url", "https://x.example", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert _items(out.read_text())["reqAdapterUrl"] == (
        "https://x.example/plugins/salesforce/softphone"
    )


def test_call_center_needs_a_public_https_url() -> None:
    result = CliRunner().invoke(cli_main, ["salesforce", "call-center"])
    assert result.exit_code == 2
    assert f"{ENV_PREFIX}PUBLIC_URL" in result.output
    result = CliRunner().invoke(
        cli_main, ["salesforce", "call-center", "--public-url", "http://plain.example"]
    )
    assert result.exit_code == 2
    assert "https://" in result.output


def test_check_without_credentials_names_them() -> None:
    result = CliRunner().invoke(cli_main, ["salesforce", "check"])
    assert result.exit_code == 2
    assert f"{ENV_PREFIX}SESSION_ID" in result.output
