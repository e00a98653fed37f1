"""The catalogues' lint, run by ``make lint`` (``python -m presentation.catalogue_check``).

It fails when a language's folder and :data:`LANGUAGES` disagree, when a key is missing in
a language, when a text's placeholders differ between languages (or its plural forms'
count is not the language's), when a YAML catalogue waits to be carried over
(scripts/carry_keys.py), and, in the code, when a key is built at run time (an f-string, a
concatenation) or a written key is not in the catalogues: keys the code names at run time
come from mappings written out in full (presentation/keys.py), and every dictionary whose
values are catalogue keys is checked whole."""

from __future__ import annotations

import ast
import re
import string
import sys
from pathlib import Path

import yaml
from babel.messages.catalog import Catalog

from presentation.i18n import LOCALES, book_of, catalogue_path, read_catalogue
from services.languages import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("citybots", "bots", "admin", "flows", "nlu", "presentation", "services")
# Besides its catalogue, each language has these files (the hotline's FAQ, its NLU data).
PER_LANGUAGE = ("flows/faq/{lang}.yml", "nlu/data/{lang}.yml")
# A key an admin template names: {{ t("public_check.title") }}.
TEMPLATE_KEY = re.compile(r"""\bt\(\s*["']([^"']+)["']""")
# The functions that take a catalogue key as their second argument.
SINGULAR = frozenset({"text", "label"})
PLURAL = frozenset({"plural"})
# Refusals raised with the key of the text that explains them (their first argument).
KEYED_ERRORS = frozenset({"PermitError", "QuarantineError", "HotlineError"})

Messages = dict[str, str | tuple[str, ...]]


def placeholders(template: str) -> set[str]:
    """The names a template fills (``{name}``, ``{name:>3}``), or ValueError if broken."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def check_catalogues(root: Path = LOCALES) -> tuple[list[str], dict[str, Messages]]:
    problems: list[str] = []
    folders = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")}
    for lang in sorted(folders - set(LANGUAGES)):
        problems.append(f"{root / lang}: a catalogue for {lang!r}, not in services/languages.py")
    books: dict[str, Messages] = {}
    for lang in LANGUAGES:
        path = catalogue_path(lang, root)
        if not path.exists():
            problems.append(f"{path}: missing ({lang!r} is in services/languages.py)")
            continue
        catalogue = read_catalogue(path, lang)
        rule = Catalog(locale=lang).plural_forms
        if catalogue.plural_forms != rule:
            problems.append(f"{path}: Plural-Forms must be the language's: {rule}")
        books[lang] = book_of(catalogue).messages
        for key, value in books[lang].items():
            if isinstance(value, tuple) and len(value) != catalogue.num_plurals:
                problems.append(
                    f"{lang}: {key} has {len(value)} plural forms, {lang} has "
                    f"{catalogue.num_plurals}"
                )
    every_key = sorted({key for messages in books.values() for key in messages})
    for key in every_key:
        seen: dict[str, set[str]] = {}
        kinds = set()
        for lang, messages in books.items():
            value = messages.get(key, "")
            if not value or (isinstance(value, tuple) and not all(value)):
                problems.append(f"{lang}: no text for {key}")
                continue
            kinds.add(isinstance(value, tuple))
            try:
                seen[lang] = set().union(*(placeholders(f) for f in _forms(value)))
            except ValueError as error:
                problems.append(f"{lang}: {key} is not a valid template: {error}")
        if len(kinds) > 1:
            problems.append(f"{key}: has plural forms in some languages only")
        if len({frozenset(names) for names in seen.values()}) > 1:
            named = ", ".join(f"{lang} {sorted(names)}" for lang, names in seen.items())
            problems.append(f"{key}: the placeholders differ between languages: {named}")
    for lang in LANGUAGES:
        for pattern in PER_LANGUAGE:
            if not (ROOT / pattern.format(lang=lang)).exists():
                problems.append(f"{pattern.format(lang=lang)}: missing ({lang!r} is a language)")
    for waiting in sorted((ROOT / "flows" / "locales").glob("*.yml")):
        problems.append(f"{waiting}: carry its keys over with scripts/carry_keys.py")
    return problems, books


def _forms(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def _called(node: ast.Call) -> str | None:
    """The name of the function a call makes (methods, such as PIL's ``draw.text``, are
    not ours: only :mod:`presentation.i18n`'s functions, imported by name, are checked)."""
    return node.func.id if isinstance(node.func, ast.Name) else None


def _key_argument(node: ast.Call) -> ast.expr | None:
    if _called(node) in KEYED_ERRORS:
        return node.args[0] if len(node.args) == 1 else None
    if len(node.args) >= 2:
        return node.args[1]
    return next((k.value for k in node.keywords if k.arg == "key"), None)


def _built(node: ast.expr) -> bool:
    """Whether a key expression is put together at run time."""
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"format", "join"}
    ):
        return True
    if isinstance(node, ast.IfExp):
        return _built(node.body) or _built(node.orelse)
    return False


def _written(node: ast.expr) -> list[str]:
    """The keys a key expression writes out: a string, or either side of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _written(node.body) + _written(node.orelse)
    return []


def check_code(source: str, where: str, books: dict[str, Messages]) -> list[str]:
    """The problems with the catalogue keys one module's source names."""
    english = books.get("en", {})
    problems: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called(node) in SINGULAR | PLURAL | KEYED_ERRORS:
            key = _key_argument(node)
            if key is None:
                continue
            line = f"{where}:{node.lineno}"
            if _built(key):
                problems.append(f"{line}: a catalogue key built at run time: use a mapping")
            else:
                for written in _written(key):
                    found = english.get(written)
                    if found is None:
                        problems.append(f"{line}: no text {written!r} in the catalogues")
                    elif isinstance(found, tuple) != (_called(node) in PLURAL):
                        reader = "text()" if isinstance(found, str) else "plural()"
                        problems.append(f"{line}: {written!r} is read with {reader}")
        elif isinstance(node, ast.Dict):
            values = [v.value for v in node.values if isinstance(v, ast.Constant)]
            if not values or len(values) != len(node.values):
                continue
            if not all(isinstance(v, str) for v in values):
                continue
            if any(v in english for v in values):
                for value in values:
                    if value not in english:
                        problems.append(
                            f"{where}:{node.lineno}: {value!r} (in a mapping of catalogue keys)"
                            " is not in the catalogues"
                        )
    return problems


def check_faq(root: Path = ROOT) -> list[str]:
    """The FAQ's answers name the same rule placeholders in every language."""
    problems: list[str] = []
    named: dict[str, dict[str, set[str]]] = {}
    for lang in LANGUAGES:
        path = root / "flows" / "faq" / f"{lang}.yml"
        if not path.exists():
            continue
        for intent, entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            try:
                found = placeholders(str(entry.get("answer", "")))
            except ValueError as error:
                problems.append(f"{path.relative_to(root)}: {intent}: {error}")
                continue
            named.setdefault(intent, {})[lang] = found
    for intent, by_lang in named.items():
        if len({frozenset(names) for names in by_lang.values()}) > 1:
            told = ", ".join(f"{lang} {sorted(names)}" for lang, names in by_lang.items())
            problems.append(f"flows/faq: {intent}: the placeholders differ: {told}")
    return problems


def check(root: Path = ROOT, locales: Path = LOCALES) -> list[str]:
    problems, books = check_catalogues(locales)
    problems.extend(check_faq(root))
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            where = str(path.relative_to(root))
            problems.extend(check_code(path.read_text(encoding="utf-8"), where, books))
    english = books.get("en", {})
    for template in sorted((root / "admin" / "templates").rglob("*.html")):
        source = template.read_text(encoding="utf-8")
        for key in TEMPLATE_KEY.findall(source):
            if key not in english:
                problems.append(f"{template.relative_to(root)}: no text {key!r} in the catalogues")
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"catalogues: {len(problems)} problems", file=sys.stderr)
        return 1
    print(f"catalogues: {', '.join(LANGUAGES)} agree")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
