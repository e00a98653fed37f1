"""Every intent the NLU knows has a human name in every language (the Hotline page and the
agents see names, never codes)."""

from __future__ import annotations

import pytest

from flows.faq import intent_title
from nlu.data import INTENTS
from presentation.i18n import LANGUAGES


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_intent_has_a_title_in_every_language(lang: str) -> None:
    for intent in INTENTS:
        title = intent_title(lang, intent)
        assert title, intent
        assert title != intent
        assert "_" not in title


def test_an_unknown_intent_shows_as_it_is() -> None:
    assert intent_title("en", "from_another_model") == "from_another_model"
    assert intent_title("en", None) == ""
