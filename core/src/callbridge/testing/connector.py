"""``ConnectorTests``: the contract every connector must keep, as a test class to subclass.

A connector's test module subclasses it and says how to build the plugin, which variables
configure it against a fake CRM, and how to make that fake succeed or fail::

    from callbridge.testing import ConnectorTests

    class TestAcme(ConnectorTests):
        entry_point_name = "acme"
        known_number = "+390612345678"

        @pytest.fixture(autouse=True)
        def _crm(self, tmp_path):
            self.crm = FakeAcme(); self.crm.start(); yield; self.crm.stop()

        @property
        def settings_env(self):
            return {"CALLBRIDGE_ACME_URL": self.crm.url, "CALLBRIDGE_ACME_TOKEN": "s3cret-token"}

        def plugin_factory(self):
            return AcmePlugin()

        def crm_fails(self, kind):  # "permanent" or "retryable"
            self.crm.fail_next(400 if kind == "permanent" else 503)

        def crm_succeeds(self):
            self.crm.fail_next(None)

        def activity_count(self, record):
            return self.crm.count_activities(record.idempotency_key("acme"))

The inherited tests check: the installed distribution's entry point loads this plugin;
settings come from the environment (and every variable set is one the connector reads); the
lookup contract; exactly one activity per call however often ``log_call`` runs; a PBX call
id used again (weeks later, the journal long pruned) gets an activity of its own; a failing
search raises instead of answering "no match" (the core then searches again before
logging); a failing *optional* lookup (the activity's owner) never loses the activity;
permanent and passing failures raise ``PermanentError`` and ``RetryLater``; secrets never
show in a repr, an error message or the logs. A test whose hook the subclass does not provide is
skipped with the reason, never passed silently.

A subclass may not quietly replace a standard test (as langchain-tests guards its standard
tests): one that overrides ``test_...`` must say why, with ``@overrides_standard_test("why")``
or ``@pytest.mark.xfail(reason="why")``, or ``test_no_standard_test_is_overridden_silently``
fails naming it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, TypeVar

import pytest
from pydantic_settings import BaseSettings

from ..errors import PermanentError, RetryLater
from ..models import ActivityRef, Call, CallRecord, Contact, ContactDraft
from .connector_optional import OptionalCapabilityTests, check_contact
from .env import CallbridgeEnv
from .records import make_call, make_record, shifted_record
from .variables import variable_names, variables

if TYPE_CHECKING:
    from ..plugins.manager import Plugins

#: What ``crm_fails`` is asked for: data the CRM refuses, or a passing outage.
FailureKind = Literal["permanent", "retryable"]

_Test = TypeVar("_Test", bound=Callable[..., object])

#: Where ``overrides_standard_test`` keeps its reason on the overriding function.
_OVERRIDE_REASON = "__callbridge_override_reason__"


def overrides_standard_test(reason: str) -> Callable[[_Test], _Test]:
    """Mark a subclass's ``test_...`` as a deliberate replacement of the standard one.

    ``reason`` says why the standard test does not fit this connector; it is required (an
    empty one is refused) so that a reader of the subclass knows what the contract lost.
    """
    if not reason.strip():
        raise ValueError("overrides_standard_test needs a reason")

    def mark(test: _Test) -> _Test:
        setattr(test, _OVERRIDE_REASON, reason)
        return test

    return mark


def _override_reason(test: object) -> str | None:
    """Why ``test`` replaces a standard test: our decorator's reason, or an xfail's."""
    reason = getattr(test, _OVERRIDE_REASON, None)
    if isinstance(reason, str) and reason.strip():
        return reason
    for mark in getattr(test, "pytestmark", []):
        text = mark.kwargs.get("reason") if mark.name == "xfail" else None
        if isinstance(text, str) and text.strip():
            return text
    return None


@dataclass
class LoadedConnector:
    """The plugin under test, loaded and configured by the real plugin manager."""

    name: str
    plugin: object
    settings: BaseSettings | None
    plugins: Plugins

    def lookup_contact(self, number: str, call: Call) -> object:
        """The plugin's ``lookup_contact``, called as the core calls it."""
        return self.plugins.lookup_contact(self.name, number, call)

    def log_call(self, record: CallRecord) -> object:
        """The plugin's ``log_call``, called as the core calls it."""
        return self.plugins.log_call(self.name, record)

    def search_contacts(self, query: str) -> object:
        """The plugin's ``search_contacts``, called as the core calls it."""
        return self.plugins.search_contacts(self.name, query)

    def create_contact(self, draft: ContactDraft) -> object:
        """The plugin's ``create_contact``, called as the core calls it."""
        return self.plugins.create_contact(self.name, draft)

    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> object:
        """The plugin's ``update_call``, called as the core calls it."""
        return self.plugins.update_call(self.name, record, activity, revision)

    def has(self, hook: str) -> bool:
        """Whether the plugin implements ``hook``."""
        return hook in self.plugins.get(self.name).hooks


class ConnectorTests(OptionalCapabilityTests):
    """Subclass me (name the subclass ``Test...``) and fill in the hooks below."""

    #: Name of the plugin in the ``callbridge`` entry point group (None: not distributed).
    entry_point_name: str | None = None
    #: A number (E.164) the fake CRM knows; None skips the "found" half of the lookup test.
    known_number: str | None = None
    #: A number nobody has.
    unknown_number: str = "+390298765432"
    #: What an agent types to find the known contact (a name); None skips the search test.
    search_query: str | None = None
    #: A number for ``create_contact`` to create a contact with (nobody has it yet).
    new_contact_number: str = "+390115550123"
    #: Secrets besides the SecretStr values of ``settings_env`` that must never be logged.
    extra_secrets: tuple[str, ...] = ()

    @property
    def settings_env(self) -> Mapping[str, str]:
        """Variables that configure the connector against the fake (default: none).

        A property, so that it can use what a fixture started (the fake CRM's URL).
        """
        return {}

    # -- what a subclass provides ---------------------------------------------------------
    def plugin_factory(self) -> object:
        """A new, unconfigured plugin object (what the entry point loads)."""
        raise NotImplementedError("ConnectorTests subclasses must define plugin_factory()")

    def crm_succeeds(self) -> None:
        """Make the fake CRM accept requests again (after ``crm_fails``)."""

    def crm_fails(self, kind: FailureKind) -> None:
        """Make the fake CRM's next requests fail: refused data, or a passing outage."""
        pytest.skip("crm_fails() is not provided by this connector's tests")

    def activity_count(self, record: CallRecord) -> int:
        """How many activities the fake CRM holds for ``record``'s call."""
        pytest.skip("activity_count() is not provided by this connector's tests")

    def crm_lookup_fails(self) -> None:
        """Make the CRM's next contact searches fail passingly (rate limit, outage).

        Default: ``crm_fails("retryable")``.
        """
        self.crm_fails("retryable")

    def optional_lookup_fails(self) -> None:
        """Make a lookup that only enriches the activity (its owner, say) fail for good.

        E.g. a 403 because the token lacks the scope of the owners API. ``log_call`` must
        then still write the activity (without what that lookup would have added).
        """
        pytest.skip("optional_lookup_fails() is not provided by this connector's tests")

    def finished_record(self, name: str) -> CallRecord:
        """A finished call that this connector logs (``name``: the plugin's name).

        Default: an answered inbound call from ``known_number`` with the contact the lookup
        found, as the engine would hand it over. Override for connectors that only log some
        calls (missed ones, say).
        """
        remote = self.known_number or "+390612345678"
        return make_record("0000C0DE", remote_e164=remote, remote_number=remote)

    # -- plumbing -------------------------------------------------------------------------
    @pytest.fixture
    def loaded_connector(self, callbridge_env: CallbridgeEnv) -> LoadedConnector:
        """The plugin configured from ``settings_env`` through the real plugin manager."""
        from .plugins import make_plugins, plugin_name

        callbridge_env.set(dict(self.settings_env))
        plugin = self.plugin_factory()
        plugins = make_plugins(plugin)
        name = plugin_name(plugins, plugin)
        info = plugins.get(name)
        assert info.active, f"{name} is {info.state}: {info.reason}"
        return LoadedConnector(name, info.plugin, info.settings, plugins)

    def _secrets(self) -> list[str]:
        values = list(self.extra_secrets)
        settings_class = getattr(self.plugin_factory(), "settings_class", None)
        if settings_class is not None:
            secret_names = {v.name for v in variables(settings_class) if v.secret}
            values += [v for k, v in self.settings_env.items() if k.upper() in secret_names]
        return [v for v in values if v and len(v) >= 4]

    # -- the contract ---------------------------------------------------------------------
    def test_no_standard_test_is_overridden_silently(self) -> None:
        """A subclass that replaces (or removes) a standard test says why, in the code."""
        silent = []
        standards = {
            name: value
            for klass in reversed(ConnectorTests.__mro__[:-1])
            for name, value in vars(klass).items()
        }
        for name, standard in standards.items():
            if not name.startswith("test_"):
                continue
            mine = getattr(type(self), name, None)
            if mine is not standard and _override_reason(mine) is None:
                silent.append(name)
        assert not silent, (
            f"{type(self).__name__} overrides standard test(s) {', '.join(sorted(silent))} "
            'without saying why: add @overrides_standard_test("why") or '
            '@pytest.mark.xfail(reason="why")'
        )

    def test_entry_point_loads_the_plugin(self) -> None:
        """``pip install`` of the distribution is enough for callbridge to find the plugin."""
        if self.entry_point_name is None:
            pytest.skip("entry_point_name is None: not distributed with an entry point")
        found = [
            ep
            for ep in importlib.metadata.entry_points(group="callbridge")
            if ep.name == self.entry_point_name
        ]
        assert found, f"no entry point {self.entry_point_name!r} in group 'callbridge'"
        loaded = found[0].load()
        obj = loaded() if inspect.isclass(loaded) else loaded
        expected = self.plugin_factory()
        if inspect.ismodule(expected):
            assert obj is expected
        else:
            assert type(obj) is type(expected), f"entry point loads {type(obj).__name__}"

    def test_settings_come_from_the_environment(
        self, loaded_connector: LoadedConnector, callbridge_env: CallbridgeEnv
    ) -> None:
        """The variables configure the plugin; every one set is a variable it reads."""
        settings_class = getattr(loaded_connector.plugin, "settings_class", None)
        if settings_class is None:
            pytest.skip("the plugin has no settings_class")
        assert isinstance(loaded_connector.settings, settings_class)
        known = variable_names(settings_class)
        unknown = sorted(k for k in self.settings_env if k.upper() not in known)
        assert not unknown, f"variables the settings class does not read: {unknown}"
        # Without any of its variables the plugin is inactive or configured by defaults, but
        # never "failed": an unconfigured connector must not look broken.
        from .plugins import make_plugins, plugin_name

        callbridge_env.unset(*self.settings_env)
        bare = self.plugin_factory()
        plugins = make_plugins(bare)
        info = plugins.get(plugin_name(plugins, bare))
        assert info.state in ("active", "not configured"), f"{info.state}: {info.reason}"

    def test_lookup_returns_a_contact_or_none(self, loaded_connector: LoadedConnector) -> None:
        """A known number gives a valid Contact, an unknown one gives None."""
        if not loaded_connector.has("lookup_contact"):
            pytest.skip("the plugin does not implement lookup_contact")
        self.crm_succeeds()
        call = make_call(outcome=None, remote_e164=self.unknown_number)
        missing = loaded_connector.lookup_contact(self.unknown_number, call)
        assert missing is None, f"lookup of an unknown number returned {missing!r}"
        if self.known_number is None:
            return
        call = make_call(outcome=None, remote_e164=self.known_number)
        found = loaded_connector.lookup_contact(self.known_number, call)
        assert isinstance(found, Contact), f"lookup returned {found!r}"
        check_contact(found)
        for candidate in found.candidates:
            check_contact(candidate)

    def test_log_call_is_exactly_once_under_retries(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """A retried delivery, a repeated one, a failed-then-retried one: one activity."""
        if not loaded_connector.has("log_call"):
            pytest.skip("the plugin does not implement log_call")
        record = self.finished_record(loaded_connector.name)
        self.crm_succeeds()
        loaded_connector.log_call(record)
        loaded_connector.log_call(record)
        assert self.activity_count(record) == 1
        # Fail once (an outage), then retry: still one activity for a second call.
        second = record.model_copy(
            update={"call": record.call.model_copy(update={"key": record.call.key + "b"})}
        )
        self.crm_fails("retryable")
        with pytest.raises(RetryLater):
            loaded_connector.log_call(second)
        self.crm_succeeds()
        loaded_connector.log_call(second)
        loaded_connector.log_call(second)
        assert self.activity_count(second) == 1
        assert self.activity_count(record) == 1

    def test_a_reused_call_id_gets_an_activity_of_its_own(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """The PBX reuses call ids; weeks later (the journal pruned) it is another call.

        Both calls have the same call key (nothing in the core remembers the first one), but
        not the same start: each gets one activity, and the second is not the first's.
        """
        if not loaded_connector.has("log_call"):
            pytest.skip("the plugin does not implement log_call")
        first = self.finished_record(loaded_connector.name)
        later = shifted_record(first, timedelta(days=40, minutes=7))
        assert later.call.key == first.call.key
        self.crm_succeeds()
        ref_first = loaded_connector.log_call(first)
        ref_later = loaded_connector.log_call(later)
        again = loaded_connector.log_call(later)
        assert self.activity_count(first) == 1
        assert self.activity_count(later) == 1, "the reused id's call was not logged"
        if isinstance(ref_first, ActivityRef) and isinstance(ref_later, ActivityRef):
            assert ref_first.record_id != ref_later.record_id, "the later call adopted the first"
            assert isinstance(again, ActivityRef)
            assert again.record_id == ref_later.record_id

    def test_a_failed_search_raises_instead_of_finding_nothing(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """A search that fails must raise, not answer None ("no match").

        The core logs a call whose lookup failed only after searching again; a lookup that
        swallowed the failure would put the activity on no record although the contact
        exists. The failure is not remembered either: the next search finds the contact.
        """
        if not loaded_connector.has("lookup_contact") or self.known_number is None:
            pytest.skip("needs lookup_contact and a known_number")
        number = self.known_number
        call = make_call(outcome=None, remote_e164=number)
        self.crm_lookup_fails()
        try:
            with pytest.raises((RetryLater, PermanentError)):
                loaded_connector.lookup_contact(number, call)
        finally:
            self.crm_succeeds()
        found = loaded_connector.lookup_contact(number, call)
        assert isinstance(found, Contact), f"after the failure the lookup returned {found!r}"

    def test_an_optional_lookup_failure_does_not_lose_the_activity(
        self, loaded_connector: LoadedConnector
    ) -> None:
        """The owner (or any enrichment) cannot be read: the activity is written anyway."""
        if not loaded_connector.has("log_call"):
            pytest.skip("the plugin does not implement log_call")
        record = self.finished_record(loaded_connector.name)
        self.optional_lookup_fails()
        try:
            loaded_connector.log_call(record)
            assert self.activity_count(record) == 1
        finally:
            self.crm_succeeds()

    @pytest.mark.parametrize(
        ("kind", "error"), [("permanent", PermanentError), ("retryable", RetryLater)]
    )
    def test_failures_map_to_the_core_errors(
        self, loaded_connector: LoadedConnector, kind: FailureKind, error: type[Exception]
    ) -> None:
        """Refused data -> PermanentError (dead at once); an outage -> RetryLater."""
        if not loaded_connector.has("log_call"):
            pytest.skip("the plugin does not implement log_call")
        record = self.finished_record(loaded_connector.name)
        self.crm_fails(kind)
        try:
            with pytest.raises(error):
                loaded_connector.log_call(record)
        finally:
            self.crm_succeeds()

    def test_secrets_stay_out_of_reprs_errors_and_logs(
        self, loaded_connector: LoadedConnector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Tokens and passwords never reach a repr, an exception message or a log line."""
        caplog.set_level(logging.DEBUG)
        plugin = loaded_connector.plugin
        texts = [repr(plugin), str(plugin), repr(loaded_connector.plugins)]
        if loaded_connector.settings is not None:
            texts += [repr(loaded_connector.settings), str(loaded_connector.settings)]
            texts.append(loaded_connector.settings.model_dump_json())
        record = self.finished_record(loaded_connector.name)
        kinds: tuple[FailureKind, ...] = ("permanent", "retryable")
        for kind in kinds:
            if not loaded_connector.has("log_call"):
                break
            try:
                self.crm_fails(kind)
            except pytest.skip.Exception:
                break
            try:
                loaded_connector.log_call(record)
            except Exception as exc:
                texts += [str(exc), repr(exc)]
            finally:
                self.crm_succeeds()
        if loaded_connector.has("lookup_contact"):
            number = self.known_number or self.unknown_number
            call = make_call(outcome=None, remote_e164=number)
            loaded_connector.lookup_contact(number, call)
        texts.append(caplog.text)
        for secret in self._secrets():
            for text in texts:
                assert secret not in text, "a secret leaked into a repr, error or log"


__all__ = ["ConnectorTests", "FailureKind", "LoadedConnector", "overrides_standard_test"]
