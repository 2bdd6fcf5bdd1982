"""The settings registry, the default profile and README's settings table agree."""

from pathlib import Path

import settings.default as profile
from archiver import config

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_settings_block() -> str:
    text = README.read_text("utf-8")
    start = text.index("<!-- settings-table")
    start = text.index("\n", start) + 1
    return text[start : text.index("<!-- end settings-table -->")].strip()


def test_readme_table_is_the_registry():
    assert readme_settings_block() == config.markdown_table()


def test_every_registered_setting_is_prefixed_and_documented():
    names = [s.name for s in config.SETTINGS]
    assert len(names) == len(set(names))
    for s in config.SETTINGS:
        assert s.name.startswith("ARCHIVER_"), s.name
        assert s.doc.endswith("."), s.name


def test_default_profile_leaves_defaults_to_the_registry_and_disables_remote_code():
    from scrapy.settings import Settings

    from archiver.addon import Archiver

    # The registry is the one place for defaults: the profile sets none, so `-s` and spider priorities tell
    # a user's choice from a default.
    assert not [name for name in config.defaults() if hasattr(profile, name)]
    assert profile.TELNETCONSOLE_ENABLED is False
    assert profile.REMOTE_CONTROL_ENABLED is False
    assert profile.EXTENSIONS["scrapy.extensions.remote_control.RemoteControl"] is None
    assert "br" not in profile.DEFAULT_REQUEST_HEADERS["Accept-Encoding"]
    settings = Settings()
    settings.setmodule(profile, priority="project")
    Archiver().update_settings(settings)
    assert settings.getdict("EXTENSIONS")["scrapy.extensions.remote_control.RemoteControl"] is None
    assert settings.getdict("EXTENSIONS")["scrapy.extensions.telnet.TelnetConsole"] is None


def test_switches_given_as_text_are_read_as_switches():
    from scrapy.settings import Settings

    # as `scrapy crawl -s NAME=VALUE` gives them: strings
    settings = Settings({"ARCHIVER_WARC_ENABLED": "False", "ARCHIVER_MEDIA": "0", "ARCHIVER_READ_DUMPS": "true"})
    assert config.get(settings, "ARCHIVER_WARC_ENABLED") is False
    assert config.get(settings, "ARCHIVER_MEDIA") is False
    assert config.get(settings, "ARCHIVER_READ_DUMPS") is True
    assert config.get(Settings(), "ARCHIVER_CONDITIONAL_REQUESTS") is True  # the default
    assert config.get(settings, "ARCHIVER_WARC_PREFIX") == "archiver"
