"""Hostile input for the property tests: any text a client could send."""

from __future__ import annotations

from hypothesis import strategies as st

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Text as a Telegram client or a browser can send it: any code point except lone
# surrogates (UTF-8 cannot carry them), NUL and other controls included.
ANY_CHAR = st.characters(exclude_categories=("Cs",))
NASTY = st.sampled_from(
    [
        "\x00",
        "\u202e",
        "\ufeff",
        "\u200b",
        "'",
        '"',
        "\\",
        ";",
        ",",
        "\n",
        "\r\n",
        "%s",
        "{0}",
        "{name}",
        "<b>",
        "</i>",
        "&amp;",
        "=1+1",
        "@SUM(A1)",
        "Ǆ",
        "ﷺ",
        "ß",
        "İ",
        "٣",
        "𝟗",
        "🧪",
        "🏳️‍🌈",
    ]
)


def hostile_text(*, min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    """Unicode text with a bias towards characters that break parsers and templates."""
    pieces = st.lists(
        st.one_of(st.text(ANY_CHAR, max_size=8), NASTY), min_size=0, max_size=max_size // 4 + 1
    ).map("".join)
    return st.one_of(st.text(ANY_CHAR, min_size=min_size, max_size=max_size), pieces).filter(
        lambda s: min_size <= len(s) <= max_size
    )
