"""The hotline's NLU: Rasa-format data, the /model/parse shape, and the ways people type."""

from pathlib import Path

import pytest

from nlu.data import INTENTS, LANGUAGES, NluDataError, load, load_file
from nlu.features import normalise, transliterate
from nlu.model import IntentModel
from nlu.service import Nlu, load_or_train


@pytest.fixture(scope="module")
def nlu(tmp_path_factory: pytest.TempPathFactory) -> Nlu:
    model, _ = load_or_train(tmp_path_factory.mktemp("nlu"))
    return Nlu(model)


def test_every_language_has_every_intent_in_rasa_format() -> None:
    examples = load()
    for language in LANGUAGES:
        assert {e.intent for e in examples if e.language == language} == set(INTENTS)
    assert len(examples) > 24 * 3 * 10


def test_bad_training_files_are_refused_saying_why(tmp_path: Path) -> None:
    wrong_version = tmp_path / "a.yml"
    wrong_version.write_text('version: "2.0"\nnlu: []\n', encoding="utf-8")
    with pytest.raises(NluDataError, match="version"):
        load_file(wrong_version, "en")
    no_dash = tmp_path / "b.yml"
    no_dash.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    hello\n', encoding="utf-8"
    )
    with pytest.raises(NluDataError, match="starts with '- '"):
        load_file(no_dash, "en")


def test_parse_answers_in_rasas_shape(nlu: Nlu) -> None:
    answer = nlu.parse("What is COVID-19?")
    assert answer["text"] == "What is COVID-19?"
    assert answer["intent"]["name"] == "faq_what_is_covid"
    assert 0 < answer["intent"]["confidence"] <= 1
    ranking = answer["intent_ranking"]
    assert ranking[0] == answer["intent"]
    assert [r["confidence"] for r in ranking] == sorted(
        (r["confidence"] for r in ranking), reverse=True
    )
    assert answer["entities"] == []
    assert nlu.parse("   ")["intent"]["name"] == "out_of_scope"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("передаётся ли коронавирус через поверхности", "faq_transmission"),  # inflection, ё
        ("симптомы коронавирса", "faq_symptoms"),  # a typo
        ("kak poluchit propusk", "faq_permit_howto"),  # Latin-typed Russian
        ("рұқсатнаманы калай алуга болады", "faq_permit_howto"),  # no Kazakh keyboard
        ("вирус калай берiледi", "faq_transmission"),  # a Latin i inside a Kazakh word
        ("сәлем", "greet"),
        ("рахмет", "thanks"),
        ("где сделать pcr test", "faq_pcr_testing"),  # mixed languages
        ("оператора пожалуйста!!!", "human_handoff"),
    ],
)
def test_the_ways_people_type_are_understood(nlu: Nlu, text: str, intent: str) -> None:
    assert nlu.parse(text)["intent"]["name"] == intent


def test_folding_and_transliteration() -> None:
    assert normalise("Қажет, ЁЛКА!") == "кажет елка"
    assert transliterate("chto") == "что"
    assert transliterate("koronavirus") == "коронавирус"


def test_held_out_paraphrases_are_mostly_understood(nlu: Nlu) -> None:
    heldout = load("heldout")
    for language in LANGUAGES:
        mine = [e for e in heldout if e.language == language]
        right = sum(nlu.parse(e.text)["intent"]["name"] == e.intent for e in mine)
        assert right / len(mine) >= 0.85, language  # bench/nlu.py reports the figure


def test_the_artefact_is_cached_by_the_datas_fingerprint(tmp_path: Path) -> None:
    no_bundle = tmp_path / "no-bundle"
    model, seconds = load_or_train(tmp_path, bundled=no_bundle)
    assert seconds > 0
    again, cached = load_or_train(tmp_path, bundled=no_bundle)
    assert cached == 0.0
    assert again.fingerprint == model.fingerprint
    [artefact] = tmp_path.glob("intents-*.npz")
    assert IntentModel.load(artefact).intents == model.intents
    artefact.write_bytes(b"broken")
    _, retrained = load_or_train(tmp_path, bundled=no_bundle)
    assert retrained > 0  # an unreadable artefact is replaced, not trusted


def test_a_bundled_model_for_the_data_is_used_and_a_stale_one_is_not(tmp_path: Path) -> None:
    bundle, cache = tmp_path / "bundle", tmp_path / "data-dir"
    model, _ = load_or_train(bundle, force=True)  # what `citybots nlu train --bundle` does
    loaded, seconds = load_or_train(cache, bundled=bundle)
    assert seconds == 0.0
    assert loaded.intents == model.intents
    assert not cache.exists()  # nothing trained or written into DATA_DIR

    [artefact] = bundle.glob("intents-*.npz")
    artefact.rename(bundle / "intents-0000000000000000.npz")  # the data changed since
    _, retrained = load_or_train(cache, bundled=bundle)
    assert retrained > 0
    assert list(cache.glob("intents-*.npz"))  # the fallback: trained into DATA_DIR

    (bundle / "intents-0000000000000000.npz").rename(artefact)
    artefact.write_bytes(b"broken")
    _, cached = load_or_train(cache, bundled=bundle)
    assert cached == 0.0  # an unreadable bundle is passed over for DATA_DIR's artefact


def test_every_answerable_intent_has_an_answer_in_every_language() -> None:
    from flows.faq import answers

    wanted = set(INTENTS) - {"out_of_scope", "human_handoff"}
    for language in LANGUAGES:
        assert set(answers(language)) == wanted, language
        assert all(a["title"] and a["answer"] for a in answers(language).values())


def test_faq_answers_name_the_rules_values_from_the_settings() -> None:
    from flows.context import Limits
    from flows.faq import answer_text, answers

    limits = Limits(positive_isolation_days=10, visit_retention_days=21, fix_retention_days=7)
    for language in LANGUAGES:
        for intent in answers(language):
            assert "{" not in answer_text(language, intent, limits), (language, intent)
    assert "(10 days from the positive result" in answer_text("en", "faq_status_duration", limits)
    assert "удаляются через 21 день" in answer_text("ru", "faq_data_privacy", limits)
