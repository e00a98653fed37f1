import pytest

from citybots.settings import Settings, SettingsError, load_settings


def _forget_exported_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's exported settings (ADMIN_PORT, DATABASE_URL, ...) must not count."""
    _forget_exported_settings(monkeypatch)


def test_defaults_are_what_the_readme_says() -> None:
    settings = load_settings(_env_file=None)
    assert str(settings.data_dir) == "var"
    assert settings.admin_host == "127.0.0.1"
    assert settings.admin_port == 8080
    assert settings.default_language == "ru"
    assert not settings.webhook_mode


def test_the_defaults_test_ignores_what_the_caller_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADMIN_PORT", "9191")
    _forget_exported_settings(monkeypatch)
    test_defaults_are_what_the_readme_says()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"admin_port": "eighty"}, "ADMIN_PORT"),
        ({"admin_port": 70000}, "ADMIN_PORT"),
        ({"database_url": "mysql://x"}, "DATABASE_URL"),
        ({"redis_url": "localhost:6379"}, "REDIS_URL"),
        ({"default_language": "de"}, "DEFAULT_LANGUAGE"),
        ({"citizen_bot_token": "not a token"}, "CITIZEN_BOT_TOKEN"),
        ({"telegram_api_base": "api.telegram.org"}, "TELEGRAM_API_BASE"),
        ({"webhook_base_url": "https://bots.example.kz"}, "WEBHOOK_SECRET"),
        ({"webhook_base_url": "https://x.kz", "webhook_secret": "short"}, "WEBHOOK_SECRET"),
    ],
)
def test_a_bad_setting_fails_with_one_line_naming_it(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None, **overrides)
    message = str(error.value)
    assert named in message
    assert "\n" not in message


def test_an_empty_audit_chain_key_is_unset_not_an_empty_key() -> None:
    # `cp .env.example .env` leaves AUDIT_CHAIN_KEY= empty: the key file is used then.
    assert load_settings(_env_file=None, audit_chain_key=" ").audit_chain_key is None
    assert load_settings(_env_file=None, audit_chain_key="k" * 64).audit_chain_key is not None


def test_bots_without_tokens_run_on_the_sandbox() -> None:
    settings = load_settings(_env_file=None, citizen_bot_token="123456:ABCdef-ghi")
    assert settings.sandbox_bots == ["staff", "quarantine", "doctor", "agent"]
    assert settings.bot_token("citizen") == "123456:ABCdef-ghi"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_PORT", "9090")
    monkeypatch.setenv("DEFAULT_LANGUAGE", "kk")
    settings = load_settings(_env_file=None)
    assert settings.admin_port == 9090
    assert settings.default_language == "kk"
