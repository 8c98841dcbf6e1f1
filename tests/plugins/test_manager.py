"""The plugin manager: sources, states with reasons, selection, strictness, dispatch helpers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from callbridge.errors import ConfigurationError
from callbridge.hookspecs import hookimpl
from callbridge.models import ActivityRef, CallRecord, Contact, ScreenPop
from callbridge.plugins.base import NotConfigured, PluginSettings
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings

SettingsFactory = Callable[..., Settings]


def unique(prefix: str = "cbtest") -> str:
    """A module name no other test (or an earlier run) has imported."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


PLUGIN_SOURCE = """
from callbridge.hookspecs import hookimpl
from callbridge.models import ActivityRef

{extra}

@hookimpl
def log_call(record):
    return ActivityRef(record_type="test", record_id="from-{tag}")
"""


def write_module(folder: Path, module: str, tag: str, extra: str = "") -> Path:
    path = folder / f"{module}.py"
    path.write_text(PLUGIN_SOURCE.format(extra=extra, tag=tag), encoding="utf-8")
    return path


class Recorder:
    """A plugin object that records pops and logs calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pops: list[ScreenPop] = []

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        self.pops.append(pop)

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        return ActivityRef(record_type="test", record_id=f"{self.name}:{record.call.key}")


class XSettings(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="CBTEST_X_")

    port: int
    token: SecretStr


class Configurable:
    """A plugin with required settings."""

    name = "configurable"
    settings_class = XSettings

    def __init__(self) -> None:
        self.got: XSettings | None = None

    def configure(self, settings: XSettings) -> None:
        self.got = settings

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        pass


# --- sources ---


def test_builtins_are_listed_and_registered_like_others(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), entry_points=False)
    states = {info.name: (info.state, info.source) for info in plugins.infos}
    assert states["console"] == ("active", "builtin")
    assert states["directory"] == ("active", "builtin")
    assert states["webhook"] == ("not configured", "builtin")
    assert "CALLBRIDGE_WEBHOOK_URLS" in (plugins.get("webhook").reason or "")
    assert plugins.pm.get_plugin("directory") is plugins.get("directory").plugin
    assert plugins.pm.get_plugin("webhook") is None  # only active plugins are registered
    assert all(info.version for info in plugins.infos)


def test_entry_point_from_a_real_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    good, bad = unique(), unique()
    write_module(site, good, "entry-point")
    dist_info = site / "cbtest_dist-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cbtest-dist\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[callbridge]\nepdemo = {good}\nbroken = {bad}_missing\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))  # also invalidates import caches

    plugins = load_plugins(settings(), builtins=False)

    info = plugins.get("epdemo")
    assert (info.state, info.source, info.version) == ("active", "entry point cbtest-dist", "1.2.3")
    assert info.hooks == ["log_call"]
    broken = plugins.get("broken")
    assert broken.state == "failed"
    assert "ModuleNotFoundError" in (broken.reason or "")
    ref = plugins.log_call("epdemo", None)
    assert ref.record_id == "from-entry-point"


def test_callbridge_plugins_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    module = unique()
    write_module(tmp_path, module, "module", extra='name = "modplug"\nversion = "0.3"')
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = load_plugins(settings(plugins=[module]), builtins=False, entry_points=False)
    info = plugins.get("modplug")
    assert (info.state, info.source, info.version) == ("active", "CALLBRIDGE_PLUGINS", "0.3")


def test_callbridge_plugins_from_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    folder = tmp_path / "my plugins"
    folder.mkdir()
    path = folder / "my-plugin.py"
    path.write_text(PLUGIN_SOURCE.format(extra="", tag="file"), encoding="utf-8")
    monkeypatch.setenv("CALLBRIDGE_PLUGINS", str(path))
    from callbridge.settings import load_settings

    plugins = load_plugins(
        load_settings(data_dir=tmp_path / "data"), builtins=False, entry_points=False
    )
    info = plugins.get("my-plugin")
    assert info.state == "active"
    module_name = getattr(info.plugin, "__name__", "")
    assert module_name.startswith("_callbridge_file_plugin_my_plugin_")
    assert sys.modules[module_name] is info.plugin
    assert plugins.log_call("my-plugin", None).record_id == "from-file"


def test_two_files_with_the_same_stem_get_distinct_modules(
    tmp_path: Path, settings: SettingsFactory
) -> None:
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "plugin.py"
        path.write_text(
            PLUGIN_SOURCE.format(extra=f'name = "p{folder}"', tag=folder), encoding="utf-8"
        )
        paths.append(str(path))
    plugins = load_plugins(settings(plugins=paths), builtins=False, entry_points=False)
    assert [i.state for i in plugins.infos] == ["active", "active"]
    assert plugins.log_call("pa", None).record_id == "from-a"
    assert plugins.log_call("pb", None).record_id == "from-b"


def test_import_failure_is_isolated(tmp_path: Path, settings: SettingsFactory) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('the CRM SDK is missing')\n", encoding="utf-8")
    missing = tmp_path / "nowhere.py"
    plugins = load_plugins(
        settings(plugins=[str(broken), str(missing), unique() + "_absent"]),
        entry_points=False,
        extra=[Recorder("good")],
    )
    reasons = {i.name: (i.state, i.reason or "") for i in plugins.infos}
    assert reasons["broken"][0] == "failed"
    assert "the CRM SDK is missing" in reasons["broken"][1]
    assert reasons["nowhere"][0] == "failed"
    assert "no such file" in reasons["nowhere"][1]
    assert reasons["good"] == ("active", "")
    assert reasons["directory"][0] == "active"
    assert not any(name.startswith("_callbridge_file_plugin_broken") for name in sys.modules)


# --- settings ---


def test_invalid_settings_fail_naming_each_variable(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    monkeypatch.setenv("CBTEST_X_PORT", "eighty")
    plugins = load_plugins(
        settings(), builtins=False, entry_points=False, extra=[Configurable, Recorder("other")]
    )
    info = plugins.get("configurable")
    assert info.state == "failed"
    assert "CBTEST_X_PORT:" in (info.reason or "")
    assert "CBTEST_X_TOKEN: Field required" in (info.reason or "")
    assert plugins.get("other").state == "active"


def test_secret_value_never_in_the_reason(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    monkeypatch.setenv("CBTEST_X_PORT", "eighty")
    monkeypatch.setenv("CBTEST_X_TOKEN", "s3cr3t-t0ken-value")
    plugins = load_plugins(settings(), builtins=False, entry_points=False, extra=[Configurable])
    info = plugins.get("configurable")
    assert "s3cr3t" not in (info.reason or "")
    assert "s3cr3t" not in repr(info)


def test_settings_from_dotenv_count_as_set(clean_env: Path, settings: SettingsFactory) -> None:
    (clean_env / ".env").write_text("CBTEST_X_PORT=eighty\n", encoding="utf-8")
    plugins = load_plugins(settings(), builtins=False, entry_points=False, extra=[Configurable])
    assert plugins.get("configurable").state == "failed"


def test_not_configured_when_no_variable_is_set(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), builtins=False, entry_points=False, extra=[Configurable])
    info = plugins.get("configurable")
    assert info.state == "not configured"
    assert "CBTEST_X_PORT" in (info.reason or "")
    assert plugins.implementers("screen_pop") == []


def test_valid_settings_reach_configure(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    monkeypatch.setenv("CBTEST_X_PORT", "8080")
    monkeypatch.setenv("CBTEST_X_TOKEN", "abc")
    plugins = load_plugins(settings(), builtins=False, entry_points=False, extra=[Configurable])
    info = plugins.get("configurable")
    assert info.state == "active"
    assert isinstance(info.settings, XSettings)
    plugin = info.plugin
    assert isinstance(plugin, Configurable)
    assert plugin.got is not None
    assert plugin.got.port == 8080


class Raising:
    name = "raising"

    def configure(self, settings: None) -> None:
        raise OSError("cannot reach the CRM's token endpoint")

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        pass


class Declining:
    name = "declining"

    def configure(self, settings: None) -> None:
        raise NotConfigured("no CRM instance given")

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        pass


def test_configure_errors_and_not_configured(settings: SettingsFactory) -> None:
    plugins = load_plugins(
        settings(), builtins=False, entry_points=False, extra=[Raising, Declining]
    )
    raising, declining = plugins.get("raising"), plugins.get("declining")
    assert raising.state == "failed"
    assert "OSError: cannot reach the CRM's token endpoint" in (raising.reason or "")
    assert (declining.state, declining.reason) == ("not configured", "no CRM instance given")


# --- selection and strictness ---


def test_connectors_select_the_active_plugins(settings: SettingsFactory) -> None:
    plugins = load_plugins(
        settings(connectors=["directory", "other"]),
        entry_points=False,
        extra=[Recorder("other"), Recorder("third")],
    )
    assert [i.name for i in plugins.active()] == ["directory", "other"]
    third = plugins.get("third")
    assert third.state == "disabled"
    assert "CALLBRIDGE_CONNECTORS" in (third.reason or "")
    assert plugins.get("console").state == "disabled"


def test_unknown_connector_is_an_error(settings: SettingsFactory) -> None:
    with pytest.raises(ConfigurationError, match=r"CALLBRIDGE_CONNECTORS.*'salesforse'"):
        load_plugins(settings(connectors=["salesforse"]), entry_points=False)


def test_strict_mode_makes_failures_fatal(tmp_path: Path, settings: SettingsFactory) -> None:
    broken = tmp_path / "broken_strict.py"
    broken.write_text("import not_a_module_anywhere\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"broken_strict: import failed"):
        load_plugins(settings(plugins=[str(broken)], strict_plugins=True), entry_points=False)
    # not configured is not a failure, even in strict mode
    plugins = load_plugins(settings(strict_plugins=True), entry_points=False)
    assert plugins.get("webhook").state == "not configured"


def test_duplicate_names_fail_the_second(settings: SettingsFactory) -> None:
    first, second = Recorder("twin"), Recorder("twin")
    plugins = load_plugins(settings(), builtins=False, entry_points=False, extra=[first, second])
    assert [i.state for i in plugins.infos] == ["active", "failed"]
    assert "already loaded" in (plugins.infos[1].reason or "")
    assert plugins.pm.get_plugin("twin") is first


# --- pluggy validation ---


class Misspelled:
    name = "misspelled"

    @hookimpl
    def log_cal(self, record: CallRecord) -> None:  # a typo of log_call
        pass


class WrongArgument:
    name = "wrong-argument"

    @hookimpl
    def lookup_contact(self, phone: str) -> None:  # the spec calls it "number"
        pass


def test_misspelled_hook_fails_that_plugin_only(settings: SettingsFactory) -> None:
    plugins = load_plugins(
        settings(),
        builtins=False,
        entry_points=False,
        extra=[Recorder("before"), Misspelled(), WrongArgument(), Recorder("after")],
    )
    misspelled = plugins.get("misspelled")
    assert misspelled.state == "failed"
    assert "unknown hook 'log_cal'" in (misspelled.reason or "")
    assert "log_call" in (misspelled.reason or "")  # the known hooks are listed
    wrong = plugins.get("wrong-argument")
    assert wrong.state == "failed"
    assert "phone" in (wrong.reason or "")
    assert [i.name for i in plugins.active()] == ["before", "after"]
    plugins.pm.check_pending()  # nothing pending is left behind
    with pytest.raises(ConfigurationError, match="misspelled"):
        load_plugins(
            settings(strict_plugins=True), builtins=False, entry_points=False, extra=[Misspelled]
        )


def test_hookspecs_are_added(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), builtins=False, entry_points=False)
    for hook in ("lookup_contact", "screen_pop", "log_call", "pbx_event", "startup", "shutdown"):
        assert getattr(plugins.pm.hook, hook).has_spec()
    assert isinstance(plugins.hook, pluggy.HookRelay)


# --- calling ---


class Boom(Exception):
    pass


class Failing:
    name = "failing"

    @hookimpl
    def log_call(self, record: CallRecord) -> None:
        raise Boom("the CRM said no")


class NumberOnly:
    name = "number-only"

    @hookimpl
    def lookup_contact(self, number: str) -> Contact:
        return Contact(record_id="7", name=f"owner of {number}")


def test_typed_calls_and_implementers(
    settings: SettingsFactory, make_record: Callable[..., CallRecord]
) -> None:
    plugins = load_plugins(
        settings(),
        builtins=False,
        entry_points=False,
        extra=[Recorder("alpha"), Failing(), NumberOnly(), Recorder("beta")],
    )
    assert plugins.implementers("log_call") == ["alpha", "failing", "beta"]
    assert plugins.implementers("lookup_contact") == ["number-only"]
    assert plugins.implementers("pbx_event") == []
    record = make_record()
    assert plugins.log_call("beta", record).record_id == "beta:c1:0000AB12"
    with pytest.raises(Boom, match="the CRM said no"):
        plugins.log_call("failing", record)
    contact = plugins.lookup_contact("number-only", "+39061", None)
    assert contact.name == "owner of +39061"
    with pytest.raises(KeyError):
        plugins.log_call("number-only", record)
    with pytest.raises(KeyError):
        plugins.log_call("nobody", record)
    assert plugins.implementers("no_such_hook") == []


def test_fan_out_reaches_active_plugins_only(
    settings: SettingsFactory, make_pop: Callable[..., ScreenPop]
) -> None:
    on, off = Recorder("on"), Recorder("off")
    plugins = load_plugins(
        settings(connectors=["on"]), builtins=False, entry_points=False, extra=[on, off]
    )
    pop = make_pop()
    plugins.screen_pop(pop)
    assert on.pops == [pop]
    assert off.pops == []


class PopFails:
    name = "pop-fails"

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        raise Boom("the CRM push is down")

    @hookimpl
    def shutdown(self) -> None:
        raise Boom("close failed")


def test_a_failing_plugin_never_keeps_the_others_from_a_fan_out(
    settings: SettingsFactory,
    make_pop: Callable[..., ScreenPop],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, last = Recorder("first"), Recorder("last")
    plugins = load_plugins(
        settings(), builtins=False, entry_points=False, extra=[first, PopFails(), last]
    )
    pop = make_pop()
    plugins.screen_pop(pop)
    plugins.shutdown(None)
    assert first.pops == [pop]
    assert last.pops == [pop]
    assert "plugin pop-fails failed in screen_pop: Boom: the CRM push is down" in caplog.text
    assert "plugin pop-fails failed in shutdown: Boom: close failed" in caplog.text


class Tracer:
    """A plugin that only wraps log_call: it sees every per-plugin call, and logs none."""

    name = "tracer"

    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl(wrapper=True)
    def log_call(self, record: CallRecord) -> object:
        result = yield
        self.seen.append(result)
        return result


def test_per_plugin_calls_go_through_pluggy_wrappers_and_tracing(
    settings: SettingsFactory, make_record: Callable[..., CallRecord]
) -> None:
    tracer = Tracer()
    plugins = load_plugins(
        settings(),
        builtins=False,
        entry_points=False,
        extra=[tracer, Recorder("alpha"), Recorder("beta")],
    )
    assert plugins.implementers("log_call") == ["alpha", "beta"]  # a wrapper does not log
    traced: list[tuple[str, list[str]]] = []
    undo = plugins.pm.add_hookcall_monitoring(
        lambda hook, impls, kwargs: traced.append((hook, [i.plugin_name for i in impls])),
        lambda outcome, hook, impls, kwargs: None,
    )
    try:
        ref = plugins.log_call("beta", make_record())
    finally:
        undo()
    assert ref.record_id == "beta:c1:0000AB12"
    assert tracer.seen == [[ref]]  # the wrapper saw beta's answer, and beta's alone
    assert traced == [("log_call", ["beta", "tracer"])]


# --- the console fallback ---


class PopOnly:
    name = "pop-only"

    @hookimpl
    def screen_pop(self, pop: ScreenPop) -> None:
        pass


def test_console_is_active_when_nothing_else_logs_calls(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), entry_points=False, extra=[PopOnly()])
    assert plugins.get("console").state == "active"  # the directory does not count
    assert plugins.implementers("log_call") == ["directory", "console"]


def test_console_steps_aside_for_a_real_connector(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), entry_points=False, extra=[Recorder("crm")])
    console = plugins.get("console")
    assert console.state == "disabled"
    assert "crm" in (console.reason or "")
    assert plugins.pm.get_plugin("console") is None


def test_console_forced_on_and_off(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    monkeypatch.setenv("CALLBRIDGE_CONSOLE_ENABLED", "true")
    plugins = load_plugins(settings(), entry_points=False, extra=[Recorder("crm")])
    assert plugins.get("console").state == "active"
    monkeypatch.delenv("CALLBRIDGE_CONSOLE_ENABLED")
    monkeypatch.setenv("CALLBRIDGE_CONSOLE__ENABLED", "false")
    plugins = load_plugins(settings(), entry_points=False)
    console = plugins.get("console")
    assert console.state == "disabled"
    assert "CALLBRIDGE_CONSOLE_ENABLED=false" in (console.reason or "")


def test_console_selected_by_connectors_stays_active(settings: SettingsFactory) -> None:
    plugins = load_plugins(
        settings(connectors=["console", "crm"]), entry_points=False, extra=[Recorder("crm")]
    )
    assert plugins.get("console").state == "active"


def test_a_failed_connector_does_not_silence_the_console(settings: SettingsFactory) -> None:
    plugins = load_plugins(settings(), entry_points=False, extra=[Failing(), Misspelled()])
    # Failing is active (it fails only when called), so the console steps aside for it ...
    assert plugins.get("console").state == "disabled"
    # ... but a plugin that failed to load does not count.
    plugins = load_plugins(settings(), entry_points=False, extra=[Misspelled()])
    assert plugins.get("console").state == "active"


def test_invalid_console_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsFactory
) -> None:
    monkeypatch.setenv("CALLBRIDGE_CONSOLE_ENABLED", "perhaps")
    plugins = load_plugins(settings(), entry_points=False)
    console = plugins.get("console")
    assert console.state == "failed"
    assert (console.reason or "").splitlines()[1].startswith("CALLBRIDGE_CONSOLE_ENABLED:")
