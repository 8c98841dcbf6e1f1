"""Small parts of the companies work, each on its own."""

from __future__ import annotations

from callbridge.companies.registry import agent_key, company_of_plugin
from callbridge.engine.cache import MISSING
from callbridge.engine.lookups import CompanyCaches
from callbridge.engine.tracker_leg import call_key, split_key, user_call_id_of
from callbridge.models import Contact
from callbridge.testing.companies import to_toml


class _Owners:
    """What ``CompanyCaches`` asks of the plugins: whose instance a plugin name is."""

    def company_of(self, name: str) -> str | None:
        return company_of_plugin(name)


def test_one_companys_flood_never_evicts_anothers_contacts() -> None:
    caches = CompanyCaches(_Owners(), 2)  # type: ignore[arg-type]
    kept = Contact(record_id="b1", name="beta's customer")
    caches.set(("crm@beta", "+3902111"), kept, 300)
    for n in range(50):  # acme's numbers, far more than a cache holds
        caches.set(("crm@acme", f"+390300{n}"), None, 300)
    assert caches.get(("crm@beta", "+3902111")) == kept
    assert caches.get(("crm@acme", "+3903000")) is MISSING  # acme's own LRU evicted its oldest
    assert len(caches) == 3


def test_names_and_keys_of_a_company() -> None:
    assert call_key("1", "000012A0") == "1:000012A0"  # one company: as always
    assert call_key("1", "000012A0", "default") == "1:000012A0"
    key = call_key("1", "000012A0", "acme")
    assert key == "acme.1:000012A0" and user_call_id_of(key) == "000012A0"
    assert split_key(key + ":20240506T090000.000000Z") == (key, "20240506T090000.000000Z")
    assert agent_key("default", "201") == "201" and agent_key("acme", "201") == "201@acme"
    assert company_of_plugin("hubspot") == "default"
    assert company_of_plugin("hubspot@acme") == "acme"


def test_to_toml_writes_what_tomllib_reads() -> None:
    import tomllib

    data = {
        "companies": {
            "acme": {"company_id": "1", "n": 2, "ok": True, "l": ["a:*"], "plugins": {"x": {}}}
        }
    }
    assert tomllib.loads(to_toml(data)) == data
