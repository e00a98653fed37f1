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


@pytest.fixture
def no_bot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read no token, mode or sandbox setting from the caller's environment."""
    for name in ("SANDBOX", "WEBHOOK_BASE_URL", "WEBHOOK_SECRET", "WORKERS"):
        monkeypatch.delenv(name, raising=False)
    for bot in ("CITIZEN", "STAFF", "QUARANTINE", "DOCTOR", "AGENT"):
        monkeypatch.delenv(f"{bot}_BOT_TOKEN", raising=False)


TOKEN = "123456:ABCdef-ghi"
WEBHOOKS = {"webhook_base_url": "https://bots.example.kz", "webhook_secret": "s" * 20}
EVERY_BOT = ["citizen", "staff", "quarantine", "doctor", "agent"]


@pytest.mark.usefixtures("no_bot_environment")
@pytest.mark.parametrize(
    ("overrides", "mounted", "running", "said"),
    [
        ({}, True, EVERY_BOT, "sandbox: on (SANDBOX=auto and no bot has a token)"),
        (
            {"citizen_bot_token": TOKEN},
            False,
            ["citizen"],
            "sandbox: off (SANDBOX=auto and some bots have a token); not started, no token: "
            "staff, quarantine, doctor, agent (set STAFF_BOT_TOKEN, QUARANTINE_BOT_TOKEN, "
            "DOCTOR_BOT_TOKEN, AGENT_BOT_TOKEN, or SANDBOX=on to run them on the sandbox)",
        ),
        (
            {"citizen_bot_token": TOKEN, "sandbox": "on"},
            True,
            EVERY_BOT,
            "sandbox: on (SANDBOX=on)",
        ),
        ({"sandbox": "off"}, False, [], "sandbox: off (SANDBOX=off); not started"),
        (WEBHOOKS, False, [], "sandbox: off (webhook mode never serves it); not started"),
        (
            {f"{b}_bot_token": TOKEN for b in EVERY_BOT},
            False,
            EVERY_BOT,
            "sandbox: off (every bot has a token)",
        ),
    ],
)
def test_the_sandbox_is_served_only_when_every_bot_is_on_it_or_it_is_asked_for(
    overrides: dict[str, object], mounted: bool, running: list[str], said: str
) -> None:
    settings = load_settings(_env_file=None, **overrides)
    assert settings.sandbox_mounted is mounted
    assert settings.bots_to_run == running
    assert settings.sandbox_decision().startswith(said)


@pytest.mark.usefixtures("no_bot_environment")
def test_the_sandbox_cannot_be_asked_for_in_webhook_mode() -> None:
    with pytest.raises(SettingsError, match="SANDBOX=on cannot be used in webhook mode"):
        load_settings(_env_file=None, sandbox="on", **WEBHOOKS)


def test_the_news_channel_is_unset_when_empty_and_must_be_a_channel_id() -> None:
    assert load_settings(_env_file=None, city_news_channel="").city_news_channel is None
    assert (
        load_settings(_env_file=None, city_news_channel="-1001234").city_news_channel == -1001234
    )
    with pytest.raises(SettingsError, match="CITY_NEWS_CHANNEL"):
        load_settings(_env_file=None, city_news_channel="@city_news")
