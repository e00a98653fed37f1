import shutil
from pathlib import Path

import pytest

from presentation.catalogue_check import check, check_catalogues, check_code
from presentation.i18n import LANGUAGES, LOCALES, catalogue_path, catalogues, plural, text


def test_the_catalogues_and_the_code_agree() -> None:
    assert check() == []


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    root = tmp_path / "locales"
    shutil.copytree(LOCALES, root)
    return root


def _edit(root: Path, lang: str, old: str, new: str) -> None:
    path = catalogue_path(lang, root)
    source = path.read_text(encoding="utf-8")
    assert old in source
    path.write_text(source.replace(old, new, 1), encoding="utf-8")


def test_a_key_missing_in_one_language_fails_the_lint(broken: Path) -> None:
    _edit(broken, "kk", 'msgid "fallback"', 'msgid "fallback_elsewhere"')
    problems, _ = check_catalogues(broken)
    assert "kk: no text for fallback" in problems


def test_a_placeholder_that_differs_between_languages_fails_the_lint(broken: Path) -> None:
    _edit(broken, "ru", "{bot}", "{robot}")
    problems, _ = check_catalogues(broken)
    assert any(p.startswith("private_only: the placeholders differ") for p in problems)


def test_a_plural_form_missing_fails_the_lint(broken: Path) -> None:
    _edit(broken, "ru", 'msgstr[2] "{count} строк"\n', "")
    problems, _ = check_catalogues(broken)
    assert "ru: no text for apply.lines" in problems


def test_a_language_folder_not_in_the_list_fails_the_lint(broken: Path) -> None:
    shutil.copytree(broken / "en", broken / "de")
    problems, _ = check_catalogues(broken)
    assert any("'de', not in services/languages.py" in p for p in problems)


def test_keys_built_at_run_time_or_unknown_fail_the_lint() -> None:
    books = catalogues()
    source = (
        "text(lang, f'colour.{colour}')\n"
        "text(lang, 'colour.' + colour)\n"
        "text(lang, 'no.such.key')\n"
        "text(lang, 'venue.closed_all')\n"
        "KINDS = {'a': 'colour.red', 'b': 'colour.mauve'}\n"
        "text(lang, KINDS[kind])\n"
        "raise PermitError(f'apply.{code}')\n"
        "raise QuarantineError('doctor.invite_invalid' if gone else 'doctor.vanished')\n"
    )
    problems = check_code(source, "m.py", books)
    assert problems == [
        "m.py:1: a catalogue key built at run time: use a mapping",
        "m.py:2: a catalogue key built at run time: use a mapping",
        "m.py:3: no text 'no.such.key' in the catalogues",
        "m.py:4: 'venue.closed_all' is read with plural()",
        "m.py:5: 'colour.mauve' (in a mapping of catalogue keys) is not in the catalogues",
        "m.py:7: a catalogue key built at run time: use a mapping",
        "m.py:8: no text 'doctor.vanished' in the catalogues",
    ]


@pytest.mark.parametrize(
    ("lang", "count", "expected"),
    [
        ("en", 1, "1 line"),
        ("en", 2, "2 lines"),
        ("ru", 1, "1 строка"),
        ("ru", 3, "3 строки"),
        ("ru", 5, "5 строк"),
        ("ru", 11, "11 строк"),
        ("ru", 21, "21 строка"),
        ("ru", 22, "22 строки"),
        ("kk", 1, "1 жол"),
        ("kk", 7, "7 жол"),
    ],
)
def test_plural_forms_follow_each_language(lang: str, count: int, expected: str) -> None:
    assert plural(lang, "apply.lines", count) == expected


def test_a_sentence_with_two_counts_takes_each_form() -> None:
    told = text(
        "ru",
        "apply.confirm",
        lines=plural("ru", "apply.lines", 5),
        people=plural("ru", "apply.people", 2),
        vehicles=plural("ru", "apply.vehicles", 1),
    )
    assert told.startswith("Готово к отправке: 5 строк (2 человека, 1 машина).")
    assert set(catalogues()) == set(LANGUAGES)


def test_texts_name_the_rule_values_the_code_enforces() -> None:
    from presentation.keys import COLOUR_NEXT
    from presentation.rules import HOME_RADIUS, days, green_validity, silence

    consent = text(
        "en",
        "quarantine.consent",
        code="AB12",
        end="01.01.2027",
        days=days("en", 14),
        radius=HOME_RADIUS,
        silence=silence("en"),
    )
    assert "more than 30 m from home or when no location arrives for 15 minutes" in consent
    assert "deleted 14 days after they arrive" in consent
    assert "на 72 часа" in text("ru", COLOUR_NEXT["blue"], hours=green_validity("ru"))
    assert plural("ru", "visits.title", 14) == "Ваши посещения за последние 14 дней:"
    assert plural("ru", "visits.title", 21) == "Ваши посещения за последний 21 день:"


def test_a_catalogue_copied_without_its_languages_plural_rule_fails_the_lint(
    broken: Path,
) -> None:
    english_rule = "nplurals=2; plural=(n != 1);"
    russian = catalogue_path("ru", broken)
    source = russian.read_text(encoding="utf-8")
    header_end = source.index("\n\n")
    head = source[:header_end]
    start = head.index('"Plural-Forms: ') + len('"Plural-Forms: ')
    end = head.index('\\n"', start)
    russian.write_text(head[:start] + english_rule + head[end:] + source[header_end:], "utf-8")
    problems, _ = check_catalogues(broken)
    assert any("Plural-Forms must be the language's" in p for p in problems)


def test_faq_answers_naming_different_rules_in_two_languages_fail_the_lint(
    tmp_path: Path,
) -> None:
    from presentation.catalogue_check import check_faq

    faq = tmp_path / "flows" / "faq"
    faq.mkdir(parents=True)
    for lang in LANGUAGES:
        rule = "{visits_kept}" if lang == "kk" else "{visit_history}"
        (faq / f"{lang}.yml").write_text(f'faq_x:\n  title: "x"\n  answer: "a {rule}"\n', "utf-8")
    assert check_faq(tmp_path) == [
        "flows/faq: faq_x: the placeholders differ: ru ['visit_history'], "
        "kk ['visits_kept'], en ['visit_history']"
    ]
