"""The Mini App's initData check and the venue codes' links, without I/O."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pytest

from bots.sandbox.webapp import launch_url, sign_init_data
from flows.context import BotLinks
from flows.miniapp import InitDataRefused, Refusal, verify_opening

TOKEN = "123456:SANDBOX-test-token"
USER = {"id": 42, "first_name": "Aigerim", "last_name": "S", "language_code": "kk"}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AGE = timedelta(minutes=5)


def _signed(start_param: str | None = None) -> str:
    return sign_init_data(TOKEN, USER, start_param=start_param, auth_date=int(NOW.timestamp()))


def test_an_opening_signed_with_the_bots_token_is_read_from_the_signed_data() -> None:
    opening = verify_opening(TOKEN, _signed("in_abc"), max_age=AGE, now=NOW)
    assert (opening.user_id, opening.name, opening.language_code) == (42, "Aigerim S", "kk")
    assert opening.start_param == "in_abc"
    assert len(opening.init_hash) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"user": json.dumps(USER | {"id": 43})},  # someone else
        {"start_param": "in_other"},  # another venue's code
        {"auth_date": str(int(NOW.timestamp()) + 1)},  # a fresher date
        {"hash": "0" * 64},
    ],
)
def test_an_opening_changed_after_signing_is_forged(change: dict[str, str]) -> None:
    fields = dict(parse_qsl(_signed("in_abc"))) | change
    with pytest.raises(InitDataRefused) as refused:
        verify_opening(TOKEN, urlencode(fields), max_age=AGE, now=NOW)
    assert refused.value.reason is Refusal.FORGED


def test_an_opening_signed_with_another_token_or_without_a_user_is_forged() -> None:
    for init_data in (
        sign_init_data("999:other", USER, auth_date=int(NOW.timestamp())),
        "",
        "a" * 5000,
    ):
        with pytest.raises(InitDataRefused) as refused:
            verify_opening(TOKEN, init_data, max_age=AGE, now=NOW)
        assert refused.value.reason is Refusal.FORGED


@pytest.mark.parametrize("offset", [AGE + timedelta(seconds=1), -timedelta(minutes=5)])
def test_an_opening_too_old_or_from_the_future_is_stale(offset: timedelta) -> None:
    with pytest.raises(InitDataRefused) as refused:
        verify_opening(TOKEN, _signed(), max_age=AGE, now=NOW + offset)
    assert refused.value.reason is Refusal.STALE


def test_the_launch_url_carries_init_data_in_the_fragment() -> None:
    signed = _signed()
    url = launch_url("https://city.example/miniapp/", signed)
    page, fragment = url.split("#", 1)
    assert page == "https://city.example/miniapp/"
    assert dict(parse_qsl(fragment))["tgWebAppData"] == signed


def test_venue_codes_open_the_mini_app_only_when_it_is_named() -> None:
    links = BotLinks(usernames={"citizen": "city_bot"})
    assert links.venue_link("in_abc") == "https://t.me/city_bot?start=in_abc"
    links.miniapp_short_name = "pass"
    assert links.venue_link("in_abc") == "https://t.me/city_bot/pass?startapp=in_abc"
    assert links.deep_link("citizen", "in_abc") == "https://t.me/city_bot?start=in_abc"
