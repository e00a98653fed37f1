"""Settings from the environment and `.env`; every field is documented in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ambulance_rows import DEFAULT_CODES, CodeSet
from services.languages import LANGUAGES

BOT_NAMES: tuple[str, ...] = ("citizen", "staff", "quarantine", "doctor", "agent")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path("./var")
    telegram_api_base: str | None = None
    citizen_bot_token: SecretStr | None = None
    staff_bot_token: SecretStr | None = None
    quarantine_bot_token: SecretStr | None = None
    doctor_bot_token: SecretStr | None = None
    agent_bot_token: SecretStr | None = None
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=8080, ge=0, le=65535)
    web_keepalive_timeout: float = Field(default=20.0, gt=0, le=3600)
    web_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    registry_upload_max_mb: int = Field(default=100, ge=1, le=10_000)
    webhook_base_url: str | None = None
    webhook_secret: SecretStr | None = None
    sandbox: Literal["auto", "on", "off"] = "auto"
    default_language: str = "ru"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_enabled: bool = True
    db_pool_size: int = Field(default=10, ge=1, le=500)
    redis_pool_size: int = Field(default=50, ge=1, le=10_000)
    city_timezone: str = "Asia/Almaty"
    positive_isolation_days: int = Field(default=14, ge=1, le=60)
    citizen_status_notices: bool = True
    exposure_min_overlap_minutes: int = Field(default=15, ge=1, le=24 * 60)
    exposure_after_minutes: int = Field(default=30, ge=0, le=24 * 60)
    staff_lookups_per_hour: int = Field(default=120, ge=1, le=10_000)
    venue_lookups_per_day: int = Field(default=300, ge=1, le=100_000)
    visit_retention_days: int = Field(default=28, ge=15, le=365)
    trusted_proxies: str = ""
    quarantine_fix_retention_days: int = Field(default=14, ge=1, le=365)
    hotline_retention_days: int = Field(default=90, ge=1, le=3650)
    report_retention_days: int = Field(default=7, ge=1, le=365)
    quarantine_escalate_minutes: int = Field(default=10, ge=1, le=1440)
    # While a patient is at home, one live-location fix per this many minutes is stored (the
    # others only move the last-seen state); 0 stores every fix.
    quarantine_fix_sample_minutes: int = Field(default=5, ge=0, le=60)
    workers: int = Field(default=1, ge=1, le=64)
    update_lease_seconds: int = Field(default=60, ge=5, le=3600)
    telegram_sends_per_second: float = Field(default=25.0, gt=0, le=30)
    telegram_paid_broadcast: bool = False
    # The city's Telegram channel (its chat id, -100...) the citizen bot posts news to as
    # an administrator; unset, news goes to the bot's subscribers only.
    city_news_channel: int | None = Field(
        default=None, lt=0
    )  # Telegram's channel ids are negative
    panel_session_hours: float = Field(default=12.0, gt=0, le=168)
    nlu_backend: Literal["embedded", "rasa"] = "embedded"
    rasa_url: str | None = None
    nlu_rasa_timeout: float = Field(default=2.0, gt=0, le=30)
    model_scenarios: Path | None = None
    audit_chain_key: SecretStr | None = None
    map_tile_url: str = ""
    map_tile_attribution: str = ""
    map_center: str = "43.2380,76.9450"
    miniapp_short_name: str = Field(default="", pattern=r"^([A-Za-z0-9_]{3,30})?$")
    miniapp_init_data_max_age_seconds: int = Field(default=300, ge=10, le=86_400)
    # Ambulance (103) calls: clusters, codes, alerts, retention (services/ambulance.py)
    ambulance_cluster_meters: float = Field(default=100.0, gt=0, le=10_000)
    ambulance_cluster_days: float = Field(default=3.0, gt=0, le=60)
    ambulance_cluster_min: int = Field(default=5, ge=2, le=10_000)
    ambulance_codes: str = DEFAULT_CODES
    ambulance_alert_chat_id: int | None = None
    ambulance_retention_days: int = Field(default=365, ge=1, le=3650)
    # Disinfection brigades and clean zones (services/brigades.py)
    clean_zone_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    clean_zone_min_coverage: float = Field(default=0.6, gt=0, le=1)
    brigade_spray_width_m: float = Field(default=20.0, gt=0, le=200)
    brigade_still_minutes: int = Field(default=30, ge=5, le=24 * 60)
    brigade_track_retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("city_news_channel", mode="before")
    @classmethod
    def _channel(cls, value: object) -> object:
        """Empty (``CITY_NEWS_CHANNEL=`` in a .env) is unset; a channel's id is -100..."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url(cls, value: str) -> str:
        value = value.strip()
        if value and not (
            value.startswith(("https://", "http://", "/"))
            and all(part in value for part in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError(
                "must be a tile URL template such as https://tile.example.org/{z}/{x}/{y}.png"
            )
        return value

    @field_validator("map_center")
    @classmethod
    def _map_center(cls, value: str) -> str:
        try:
            latitude, longitude = (float(part) for part in value.split(","))
        except ValueError:
            raise ValueError("must be latitude,longitude such as 43.2380,76.9450") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("latitude must be within -90..90 and longitude within -180..180")
        return f"{latitude},{longitude}"

    @field_validator("model_scenarios", mode="before")
    @classmethod
    def _scenario_file(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if value is not None:
            from services.model.scenarios import ScenarioError, load_spec

            try:
                load_spec(Path(str(value)))
            except ScenarioError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("ambulance_codes")
    @classmethod
    def _ambulance_codes(cls, value: str) -> str:
        CodeSet(value)  # a ValueError says which item is wrong
        return value

    @field_validator("city_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone (for example Asia/Almaty)") from None
        return value

    @field_validator(
        "database_url",
        "redis_url",
        "telegram_api_base",
        "webhook_base_url",
        "citizen_bot_token",
        "staff_bot_token",
        "quarantine_bot_token",
        "doctor_bot_token",
        "agent_bot_token",
        "webhook_secret",
        "rasa_url",
        "audit_chain_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("telegram_api_base", "webhook_base_url", "rasa_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// URL")
            value = value.rstrip("/")
        return value

    @field_validator(
        "citizen_bot_token",
        "staff_bot_token",
        "quarantine_bot_token",
        "doctor_bot_token",
        "agent_bot_token",
    )
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            bot_id, _, secret = value.get_secret_value().partition(":")
            if not bot_id.isdigit() or not secret or any(c.isspace() for c in secret):
                raise ValueError("is not a bot token of the form 123456:ABC-DEF...")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
            if not 16 <= len(raw) <= 256 or not set(raw) <= allowed:
                raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _workers_need_webhooks_and_tokens(self) -> Settings:
        if self.workers > 1 and (not self.webhook_base_url or self.sandbox_bots):
            raise ValueError(
                "WORKERS above 1 needs webhook mode (WEBHOOK_BASE_URL) and a token for every "
                "bot: the sandbox and long polling live in one process"
            )
        return self

    @model_validator(mode="after")
    def _rasa_needs_url(self) -> Settings:
        if self.nlu_backend == "rasa" and not self.rasa_url:
            raise ValueError("NLU_BACKEND=rasa needs RASA_URL (for example http://127.0.0.1:5005)")
        return self

    @model_validator(mode="after")
    def _no_sandbox_for_webhooks(self) -> Settings:
        if self.webhook_base_url and self.sandbox == "on":
            raise ValueError(
                "SANDBOX=on cannot be used in webhook mode (WEBHOOK_BASE_URL): a deployment "
                "facing Telegram never serves the sandbox; give every bot its token"
            )
        return self

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_base_url and self.webhook_secret is None:
            raise ValueError(
                "WEBHOOK_SECRET is required when WEBHOOK_BASE_URL is set (webhook mode)"
            )
        return self

    def bot_token(self, bot_name: str) -> str | None:
        """The configured token of a bot, or None when it runs on the sandbox."""
        secret: SecretStr | None = getattr(self, f"{bot_name}_bot_token")
        return secret.get_secret_value() if secret is not None else None

    @property
    def reports_dir(self) -> Path:
        """The private folder (0700) of uploads being imported and rejected-row reports."""
        return self.data_dir / "reports"

    @property
    def webhook_mode(self) -> bool:
        return self.webhook_base_url is not None

    @property
    def sandbox_bots(self) -> list[str]:
        """The bots without a token."""
        return [name for name in BOT_NAMES if self.bot_token(name) is None]

    @property
    def sandbox_mounted(self) -> bool:
        """Whether the sandbox (its user side and faults API) is served: with SANDBOX=on,
        or SANDBOX=auto when no bot has a token; never in webhook mode."""
        if self.webhook_mode or self.sandbox == "off":
            return False
        return self.sandbox == "on" or len(self.sandbox_bots) == len(BOT_NAMES)

    @property
    def bots_to_run(self) -> list[str]:
        """The bots that start: those with a token, and the others on a mounted sandbox."""
        mounted = self.sandbox_mounted
        return [n for n in BOT_NAMES if mounted or self.bot_token(n) is not None]

    def sandbox_decision(self) -> str:
        """One line saying whether the sandbox is served, and why; and which bots do not
        start for want of a token."""
        missing = [n for n in self.sandbox_bots if n not in self.bots_to_run]
        if self.sandbox_mounted:
            why = "SANDBOX=on" if self.sandbox == "on" else "SANDBOX=auto and no bot has a token"
            line = f"sandbox: on ({why}): bots without a token run on it, at /sandbox/"
        elif self.webhook_mode:
            line = "sandbox: off (webhook mode never serves it)"
        elif self.sandbox == "off":
            line = "sandbox: off (SANDBOX=off)"
        elif missing:
            line = "sandbox: off (SANDBOX=auto and some bots have a token)"
        else:
            line = "sandbox: off (every bot has a token)"
        if missing:
            env = ", ".join(f"{n.upper()}_BOT_TOKEN" for n in missing)
            line += f"; not started, no token: {', '.join(missing)} (set {env}"
            line += ")" if self.webhook_mode else ", or SANDBOX=on to run them on the sandbox)"
        return line

    @property
    def admin_url(self) -> str:
        host = "127.0.0.1" if self.admin_host in ("0.0.0.0", "") else self.admin_host
        return f"http://{host}:{self.admin_port}"


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        if name:
            raise SettingsError(f"bad setting {name}: {message}") from None
        raise SettingsError(f"bad settings: {message}") from None
