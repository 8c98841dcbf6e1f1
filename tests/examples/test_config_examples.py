"""examples/config: every .env key is a variable callbridge reads, the unit and nginx hold up."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from callbridge.mysql.settings import MysqlSourceSettings
from callbridge.settings import ServerSettings, Settings
from callbridge.testing import CallbridgeEnv
from callbridge.testing.variables import variable_names
from callbridge_hubspot.settings import HubSpotSettings
from callbridge_salesforce.settings import SalesforceSettings
from callbridge_zoho.settings import ZohoSettings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "config"

#: Which settings classes read each example file.
ENV_FILES: dict[str, tuple[type[BaseSettings], ...]] = {
    "core.env": (Settings,),
    "salesforce.env": (SalesforceSettings,),
    "hubspot.env": (HubSpotSettings,),
    "zoho.env": (ZohoSettings,),
    "mysql.env": (Settings, MysqlSourceSettings),
}


def unknown_keys(keys: list[str], classes: tuple[type[BaseModel], ...]) -> list[str]:
    """Keys that none of ``classes`` reads (a typo, or a removed setting)."""
    known: set[str] = set()
    for cls in classes:
        known |= variable_names(cls)
    return sorted(k for k in keys if k.upper() not in known)


def test_every_env_file_is_covered() -> None:
    assert sorted(p.name for p in CONFIG.glob("*.env")) == sorted(ENV_FILES)


@pytest.mark.parametrize("name", sorted(ENV_FILES))
def test_env_file_keys_are_known_and_values_valid(name: str, callbridge_env: CallbridgeEnv) -> None:
    values = dotenv_values(CONFIG / name)
    assert values, f"{name} sets nothing"
    assert all(v is not None for v in values.values()), f"{name}: a key without '='"
    assert unknown_keys(list(values), ENV_FILES[name]) == []
    callbridge_env.set({k: v for k, v in values.items() if v is not None})
    for cls in ENV_FILES[name]:
        cls()  # validates every value: raises on a bad one


def test_a_misspelt_key_is_caught() -> None:
    keys = ["CALLBRIDGE_SERVER__PROT", "CALLBRIDGE_SERVER__PORT", "CALLBRIDGE_PBX__SOAP_URL"]
    assert unknown_keys(keys, (Settings,)) == ["CALLBRIDGE_SERVER__PROT"]
    assert unknown_keys(["CALLBRIDGE_HUBSPOT_ACESS_TOKEN"], (HubSpotSettings,)) != []


def _unit() -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in (CONFIG / "callbridge.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        sections[current].append((key, value))
    return sections


def test_systemd_unit_is_hardened_and_complete() -> None:
    unit = _unit()
    assert set(unit) == {"Unit", "Service", "Install"}
    service = dict(unit["Service"])
    assert service["ExecStart"].endswith("callbridge serve")
    assert service["Restart"] == "on-failure"
    assert service["StateDirectory"] == "callbridge"
    assert "CALLBRIDGE_DATA_DIR=/var/lib/callbridge" in [v for k, v in unit["Service"]]
    assert any(k == "EnvironmentFile" for k, _ in unit["Service"])
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert service.get(key) == value, key


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (the structural test still ran)")
    text = (CONFIG / "callbridge.service").read_text()
    exe = shutil.which("callbridge") or str(ROOT / ".venv" / "bin" / "callbridge")
    text = text.replace("/opt/callbridge/bin/callbridge", exe)
    text = text.replace("/etc/callbridge/", f"{tmp_path}/")
    (tmp_path / "callbridge.env").write_text("")
    unit = tmp_path / "callbridge.service"
    unit.write_text(text)
    proc = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if "callbridge.service" in line]
    assert problems == [], proc.stderr


def _blocks(text: str) -> list[tuple[str, str]]:
    """(header, body) of every ``{...}`` block, innermost included."""
    stripped = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert stripped.count("{") == stripped.count("}"), "unbalanced braces"
    found = []
    stack: list[tuple[str, int]] = []
    start = 0
    for i, ch in enumerate(stripped):
        if ch == "{":
            header = stripped[start:i].strip().split(";")[-1].strip()
            stack.append((header, i))
            start = i + 1
        elif ch == "}":
            header, begin = stack.pop()
            found.append((header, stripped[begin + 1 : i]))
            start = i + 1
        elif ch == ";":
            start = i + 1
    assert not stack
    return found


def test_nginx_snippet_terminates_tls_and_streams_unbuffered() -> None:
    text = (CONFIG / "nginx.conf").read_text()
    blocks = dict(_blocks(text))
    upstream = blocks["upstream callbridge"]
    assert f"server 127.0.0.1:{ServerSettings().port};" in upstream
    servers = [body for header, body in _blocks(text) if header == "server"]
    assert any("listen 443 ssl" in body and "ssl_certificate " in body for body in servers)
    stream = next(body for header, body in _blocks(text) if "/v1/agents/" in header)
    for directive in ("proxy_buffering off;", "proxy_read_timeout 1h;", "proxy_pass"):
        assert directive in stream
    assert re.search(r"location\s+~\s+\^/v1/agents/\[\^/\]\+/events\$", text)
    # Slow clients are bounded here (callbridge does not): docs/operations.md says so.
    tls = next(body for body in servers if "listen 443 ssl" in body)
    for directive in ("client_header_timeout", "client_body_timeout", "limit_conn "):
        assert directive in tls
    assert "limit_conn_zone $binary_remote_addr" in text
    for line in text.splitlines():
        code = line.split("#", 1)[0].strip()
        if code and not code.endswith(("{", "}", ";")):
            raise AssertionError(f"directive without ';': {line!r}")


def test_nginx_accepts_the_snippet(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed (the structural test still ran)")
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("callbridge.example.com")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    text = (CONFIG / "nginx.conf").read_text()
    text = text.replace(
        "/etc/letsencrypt/live/callbridge.example.com/fullchain.pem", str(tmp_path / "cert.pem")
    ).replace("/etc/letsencrypt/live/callbridge.example.com/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log stderr;\nevents {{}}\n"
        f"http {{ include {tmp_path}/site.conf; }}\n"
    )
    proc = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
