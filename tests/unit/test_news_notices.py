"""News as the notifier renders it: the person's language with «Stop news», an urgent
notice headed with its district, the channel's post in every language."""

from zoneinfo import ZoneInfo

from flows.notices import render_notice
from presentation.i18n import text

TEXTS = {"ru": "Новость", "kk": "Жаңалық", "en": "News item"}
TZ = ZoneInfo("Asia/Almaty")


def test_a_subscriber_gets_their_language_and_the_stop_button() -> None:
    notice = render_notice("news", {"news": 1, "texts": TEXTS, "district": None}, "kk", TZ)
    assert notice.text == "Жаңалық"
    assert notice.keyboard is not None
    assert notice.keyboard.inline_keyboard[0][0].text == text("kk", "news.stop_button")


def test_an_urgent_notice_is_headed_with_its_district() -> None:
    notice = render_notice("news_urgent", {"texts": TEXTS, "district": "Medeu"}, "en", TZ)
    assert notice.text == text("en", "news.urgent", district="Medeu") + "\n\nNews item"


def test_the_channel_gets_every_language_and_no_button() -> None:
    notice = render_notice("news_channel", {"texts": TEXTS, "district": None}, "en", TZ)
    assert notice.text == "Новость\n\n— — —\n\nЖаңалық\n\n— — —\n\nNews item"
    assert notice.keyboard is None
