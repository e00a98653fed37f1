import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from presentation.i18n import LOCALES, book_of, catalogue_path, read_catalogue

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "carry_keys.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carry_keys", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keys_added_to_the_old_yaml_after_the_move_are_carried_into_the_catalogue(
    tmp_path: Path,
) -> None:
    carry = _script().carry
    target = catalogue_path("ru", tmp_path)
    shutil.copytree(LOCALES / "ru", tmp_path / "ru")
    before = target.read_text(encoding="utf-8")
    added, kept = carry(
        'fallback: "an old text, changed since"\n'
        'old_gone: "a key the move renamed"\n'
        "brigade:\n"
        '  called: "Бригада {number} вызвана"\n'
        '  teams: ["{count} бригада", "{count} бригады", "{count} бригад"]\n',
        target,
        "ru",
        {"old_gone"},
    )
    assert added == ["brigade.called", "brigade.teams"]
    assert kept == 2
    after = target.read_text(encoding="utf-8")
    assert after.startswith(before)
    book = book_of(read_catalogue(target, "ru"))
    assert book.messages["brigade.called"] == "Бригада {number} вызвана"
    assert book.messages["brigade.teams"] == (
        "{count} бригада",
        "{count} бригады",
        "{count} бригад",
    )
    assert "old_gone" not in book.messages
    assert book.messages["fallback"] != "an old text, changed since"
