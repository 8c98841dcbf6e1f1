"""The companies file: TOML through pydantic-settings, overrides, secrets from files, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from callbridge.companies import DEFAULT, load_companies, read_companies_file
from callbridge.errors import ConfigurationError
from callbridge.testing import CallbridgeEnv, CompaniesFile, cli_main


def test_without_a_file_one_company_is_made_of_todays_variables(
    callbridge_env: CallbridgeEnv,
) -> None:
    callbridge_env.set(
        CALLBRIDGE_INGRESS_TOKEN="single-ingress-token-0123",
        CALLBRIDGE_SERVER__API_TOKENS="single-api-token-0123456:*",
        CALLBRIDGE_PBX__AGENTS="201=auth-201@one",
    )
    companies = load_companies(callbridge_env.settings())
    assert companies.single and companies.names == [DEFAULT]
    (company,) = companies
    assert company.ingress_token is not None
    assert company.ingress_token.get_secret_value() == "single-ingress-token-0123"
    assert company.pbx_settings.agent_map() == {"201": "auth-201@one"}
    assert company.plugins is None  # every configured plugin, as before
    assert companies.name_for("7") == DEFAULT  # any PBX company id is ours


def test_file_values_are_read_and_the_environment_overrides_them(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile, tmp_path: Path
) -> None:
    secret = tmp_path / "acme_pbx"
    secret.write_text("from-a-file\n", encoding="utf-8")
    companies.add(
        "acme",
        "1",
        plugins={"directory": {}},
        pbx_client={"user": "auth-int@acme", "password_file": str(secret)},
    )
    companies.add("beta", "2", pbx="second", plugins=["directory"])
    companies.write()
    callbridge_env.set(
        CALLBRIDGE_PBX__SOAP_URL="http://pbx.example/soap",  # shared by every company
        CALLBRIDGE_PBX__USER="auth-shared@nobody",  # never a company's: credentials are own
        CALLBRIDGE_COMPANIES__BETA__COMPANY_ID="22",
        CALLBRIDGE_COMPANIES__BETA__PLUGINS__DIRECTORY__DEFAULT_REGION="DE",
    )
    loaded = load_companies(callbridge_env.settings())
    assert not loaded.single and loaded.names == ["acme", "beta"]
    acme, beta = loaded.get("acme"), loaded.get("beta")
    assert acme.pbx_settings.user == "auth-int@acme"
    assert acme.pbx_settings.password is not None
    assert acme.pbx_settings.password.get_secret_value() == "from-a-file"
    assert acme.pbx_settings.soap_url == "http://pbx.example/soap"
    assert beta.pbx_settings.user is None
    assert beta.company_id == "22" and beta.pbx == "second"
    assert beta.plugins == {"directory": {"default_region": "DE"}}
    assert loaded.name_for("1") == "acme"
    assert loaded.name_for("22") == "beta"  # the only company 22, on PBX "second"
    assert loaded.name_for("22", "default") is None
    assert loaded.name_for("22", "second") == "beta"
    assert loaded.name_for("3") is None
    assert "from-a-file" not in repr(acme) and "from-a-file" not in repr(acme.pbx_settings)
    written = read_companies_file(companies.path)
    assert "from-a-file" not in repr(written) and companies["acme"].ingress_token not in repr(
        written
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"pbx_client": {"agents": ["201"]}}, "companies.acme.pbx_client.agents"),
        ({"pbx_client": {"usr": "x"}}, "companies.acme.pbx_client.usr: not a CALLBRIDGE_PBX"),
        ({"ingres_token": "x"}, "companies.acme.ingres_token (CALLBRIDGE_COMPANIES__ACME__"),
        ({"ingress_token_file": "/nonexistent/x"}, "companies.acme.ingress_token_file: cannot"),
        ({"company_id": ""}, "companies.acme.company_id"),
    ],
)
def test_errors_name_the_company_and_the_field(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile, table: dict[str, object], expected: str
) -> None:
    companies.add("acme", "1")
    company = companies["acme"]
    if "ingress_token_file" in table:
        del company.table["ingress_token"]
    company.table.update(table)
    companies.write()
    with pytest.raises(ConfigurationError) as caught:
        load_companies(callbridge_env.settings())
    assert expected in str(caught.value)
    assert company.ingress_token not in str(caught.value)


def test_two_companies_may_not_share_an_id_or_a_token(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    acme = companies.add("acme", "1")
    beta = companies.add("beta", "1")
    beta.table["ingress_token"] = acme.ingress_token
    companies.write()
    with pytest.raises(ConfigurationError) as caught:
        load_companies(callbridge_env.settings())
    message = str(caught.value)
    assert "companies.beta.company_id: 1 on PBX 'default' is already companies.acme's" in message
    assert "companies.beta.ingress_token: a token of companies.acme" in message
    assert acme.ingress_token not in message


def test_names_must_be_slugs(callbridge_env: CallbridgeEnv, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[companies."Acme Corp"]\ncompany_id = "1"\n', encoding="utf-8")
    callbridge_env.set(CALLBRIDGE_COMPANIES_FILE=str(path))
    with pytest.raises(ConfigurationError, match="'Acme Corp': use lower-case"):
        load_companies(callbridge_env.settings())


def test_config_validates_the_file_and_masks_its_secrets(
    callbridge_env: CallbridgeEnv, companies: CompaniesFile
) -> None:
    acme = companies.add("acme", "1", plugins={"webhook": {"url": "http://127.0.0.1:9/hook"}})
    companies.write()
    result = CliRunner().invoke(cli_main, ["config"])
    assert result.exit_code == 0, result.output
    assert "CALLBRIDGE_COMPANIES__ACME__COMPANY_ID" in result.output
    assert "CALLBRIDGE_COMPANIES__ACME__PLUGINS__WEBHOOK__URL" in result.output
    assert acme.ingress_token not in result.output
    assert acme.api_token not in result.output
    acme.table["pbx_client"]["agents"] = ["201"]
    companies.write()
    result = CliRunner().invoke(cli_main, ["config"])
    assert result.exit_code == 2
    assert "companies.acme.pbx_client.agents" in result.output
