"""Checks the sandbox applies to what bots send, answering as Telegram does."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_INLINE_BUTTONS = 100
_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}


_TAG = re.compile(r"</?[a-z][a-z-]*(\s[^<>]*)?>")


class BadRequest(Exception):
    """Becomes ``400 Bad Request: <description>``, as Telegram words it."""


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise BadRequest(f'can\'t parse entities: Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise BadRequest(f'can\'t parse entities: Unexpected end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text a person would see; raises BadRequest where Telegram would."""
    if parse_mode is None or parse_mode == "":
        return text
    if parse_mode.upper() != "HTML":
        return text
    for position, char in enumerate(text):
        if char == "<" and not _TAG.match(text, position):
            raise BadRequest(
                f"can't parse entities: Unexpected character '<' at byte offset {position}"
            )
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise BadRequest(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.stack[-1]}"'
        )
    return "".join(parser.visible)


def check_text(text: Any, parse_mode: str | None, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("message text is empty")
    shown = visible_text(text, parse_mode)
    if not shown.strip():
        raise BadRequest("message text is empty")
    if len(shown.encode("utf-16-le")) // 2 > limit:  # Telegram counts UTF-16 code units
        raise BadRequest(
            "message caption is too long" if limit == MAX_CAPTION else "message is too long"
        )
    return shown


_INLINE_BUTTON_KINDS = (
    "callback_data",
    "url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "web_app",
    "login_url",
    "copy_text",
    "pay",
)


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise BadRequest("can't parse inline keyboard button: button must be an object with text")
    if not button["text"]:
        raise BadRequest("text buttons are unallowed in the inline keyboard")
    kinds = [k for k in _INLINE_BUTTON_KINDS if k in button]
    if len(kinds) != 1:
        raise BadRequest(
            "can't parse inline keyboard button: exactly one optional field must be used"
        )
    data = button.get("callback_data")
    if data is not None and not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
        raise BadRequest("BUTTON_DATA_INVALID")


def _check_reply_button(button: Any) -> None:
    if isinstance(button, str):
        button = {"text": button}
    if (
        not isinstance(button, dict)
        or not button.get("text")
        or not isinstance(button["text"], str)
    ):
        raise BadRequest("can't parse reply keyboard markup JSON object")


def check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate reply_markup as Telegram does; returns the parsed object."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise BadRequest("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise BadRequest("can't parse inline keyboard markup JSON object")
        if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
            raise BadRequest("REPLY_MARKUP_TOO_LONG")
        for row in rows:
            for button in row:
                _check_inline_button(button)
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
            raise BadRequest("can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                _check_reply_button(button)
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise BadRequest("can't parse reply keyboard markup JSON object")
