"""Spreadsheet cells and the NLU's parse, on arbitrary unicode."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from citybots.platform import Platform
from services.exports import spreadsheet_safe
from tests.property import cases
from tests.property.strategies import FORMULA_STARTS, hostile_text

CELLS = st.one_of(
    hostile_text(max_size=50),
    st.tuples(st.sampled_from(FORMULA_STARTS), hostile_text(max_size=20)).map("".join),
    st.integers(),
    st.floats(),
    st.none(),
)


@cases.examples(ci=500)
@given(CELLS)
@example('=HYPERLINK("http://x")')
@example("\t=1")
@example("\r+1")
@example(-1)
def test_no_exported_cell_starts_as_a_formula(cell: object) -> None:
    cases.tick("spreadsheet export cell")
    safe = spreadsheet_safe(cell)
    assert not safe.startswith(FORMULA_STARTS)
    original = "" if cell is None else str(cell)
    assert safe in (original, "'" + original)  # the text itself is kept


@cases.examples(ci=300)
@given(hostile_text(max_size=1200))
@example("")
@example("   ")
@example("\x00")
@example("ИИН 791028302728 как проверить статус?")
def test_nlu_parse_answers_in_rasa_shape_for_any_text(platform: Platform, text: str) -> None:
    cases.tick("NLU parse (in process)")
    answer = platform.nlu.parse(text)
    assert set(answer) == {"text", "intent", "intent_ranking", "entities"}
    assert isinstance(answer["text"], str)
    assert len(answer["text"]) <= 1000
    assert isinstance(answer["intent"]["name"], str)
    assert answer["intent"]["name"]
    assert 0.0 <= answer["intent"]["confidence"] <= 1.0
    ranking = answer["intent_ranking"]
    assert ranking
    assert ranking[0]["name"] == answer["intent"]["name"]
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert answer["entities"] == []
