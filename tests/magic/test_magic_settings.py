"""Settings resolution: %config traits > env vars > TOML file > defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from traitlets import TraitError

from linkis_magic.config import LinkisMagic, Secret, Settings, SettingsError, load_settings


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        'gateway = "http://file:9001"\nuser = "file-user"\npassword = "file-pw"\n'
        'transport = "rest"\nrow_limit = 7\nverify = false\nupdate_interval = 1\n',
        encoding="utf-8",
    )
    return path


def test_defaults_mean_the_embedded_gateway(tmp_path: Path) -> None:
    settings = load_settings(environ={"LINKIS_MAGIC_CONFIG": ""}, config=None)
    assert settings.embedded
    assert settings.gateway == "embedded"
    assert (settings.transport, settings.view, settings.row_limit) == ("auto", "auto", 10_000)
    assert set(settings.sources.values()) == {"default"}


def test_the_file_is_read_from_linkis_magic_config(settings_file: Path) -> None:
    settings = load_settings(environ={"LINKIS_MAGIC_CONFIG": str(settings_file)})
    assert settings.gateway == "http://file:9001"
    assert (settings.user, settings.password, settings.transport) == (
        "file-user",
        "file-pw",
        "rest",
    )
    assert (settings.row_limit, settings.verify, settings.update_interval) == (7, False, 1)
    assert settings.sources["gateway"] == "file"
    assert settings.sources["creator"] == "default"
    assert settings.config_file == str(settings_file)


def test_the_default_file_lives_in_the_home_directory(
    settings_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".linkis-magic").mkdir(parents=True)
    settings_file.rename(home / ".linkis-magic" / "config.toml")
    monkeypatch.setenv("HOME", str(home))
    assert load_settings(environ={}).gateway == "http://file:9001"


def test_a_linkis_table_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[linkis]\nuser = "t"\n', encoding="utf-8")
    assert load_settings(environ={"LINKIS_MAGIC_CONFIG": str(path)}).user == "t"


def test_env_vars_beat_the_file(settings_file: Path) -> None:
    env = {
        "LINKIS_MAGIC_CONFIG": str(settings_file),
        "LINKIS_GATEWAY": "http://env:1",
        "LINKIS_USER": "env-user",
        "LINKIS_TOKEN": "env-token",
    }
    settings = load_settings(environ=env)
    assert (settings.gateway, settings.user, settings.token) == (
        "http://env:1",
        "env-user",
        "env-token",
    )
    assert settings.password == "file-pw"
    assert settings.sources["user"] == "env"
    assert settings.sources["password"] == "file"


def test_config_traits_beat_env_vars(settings_file: Path) -> None:
    config = LinkisMagic(gateway="http://cfg:2", row_limit=0, view="text")
    config.password = "cfg-pw"
    env = {"LINKIS_MAGIC_CONFIG": str(settings_file), "LINKIS_GATEWAY": "http://env:1"}
    settings = load_settings(config, environ=env)
    assert (settings.gateway, settings.row_limit, settings.view) == ("http://cfg:2", 0, "text")
    assert settings.password == "cfg-pw"
    assert settings.sources["gateway"] == "config"
    assert settings.user == "file-user"


def test_the_config_file_trait_beats_the_env_var(settings_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('user = "other"\n', encoding="utf-8")
    config = LinkisMagic(config_file=str(other))
    settings = load_settings(config, environ={"LINKIS_MAGIC_CONFIG": str(settings_file)})
    assert settings.user == "other"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('gatewy = "x"\n', "unknown setting 'gatewy'"),
        ('row_limit = "ten"\n', "setting 'row_limit' in"),
        ("verify = 1\n", "setting 'verify' in"),
        ("row_limit = true\n", "setting 'row_limit' in"),
        ('transport = "pigeon"\n', "setting transport (from file) must be one of auto"),
        ("row_limit = -1\n", "setting row_limit (from file) must be 0 or more"),
        ('default_engine = "my engine"\n', "must be a name without spaces"),
        ("this is not toml", "cannot read settings file"),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        load_settings(environ={"LINKIS_MAGIC_CONFIG": str(path)})


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"LINKIS_MAGIC_CONFIG": str(tmp_path / "nope.toml")})


def test_secrets_are_never_shown() -> None:
    config = LinkisMagic(password="hunter2", token="tok-123")
    assert isinstance(config.password, Secret)
    assert "hunter2" not in repr(config.password) + str(config.password)
    assert config.password.reveal() == "hunter2"
    settings = load_settings(config, environ={"LINKIS_MAGIC_CONFIG": ""})
    assert "hunter2" not in repr(settings)
    assert "tok-123" not in repr(settings)
    with pytest.raises(TraitError) as info:
        config.password = 12345  # type: ignore[assignment]
    assert "12345" not in str(info.value)


def test_run_type_defaults_per_engine() -> None:
    settings = Settings()
    assert [settings.run_type_for(e) for e in ("spark", "hive", "python", "shell", "jdbc")] == [
        "sql",
        "hql",
        "python",
        "shell",
        "jdbc",
    ]
    assert settings.run_type_for("spark-3.4.1") == "sql"
    custom = Settings(default_engine="spark", default_run_type="py")
    assert custom.run_type_for("spark") == "py"
    assert custom.run_type_for("python") == "python"
