"""Carry texts written in the old YAML catalogues (flows/locales/<lang>.yml) into the gettext
catalogues (presentation/locales/<lang>/LC_MESSAGES/messages.po).

A branch started before the move adds its keys at the end of flows/locales/{ru,kk,en}.yml;
after merging it, run ``.venv/bin/python scripts/carry_keys.py`` from the repository root
(or ``--from-ref BRANCH`` to read the branch's YAML without checking it out): every key that
the YAML catalogues did not hold when they were converted and that a gettext catalogue does
not hold yet is appended to it, and the YAML files are removed. Keys that were there at the
conversion are never carried again (they may since have been renamed or given plurals).
A YAML value that is a list is a message with plural forms, in the language's order (ru:
one, few, many; kk and en: one, other), each form reading the number as ``{count}``.
``make lint`` then checks that every language has every key with the same placeholders."""

from __future__ import annotations

import argparse
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from presentation.i18n import DOMAIN, catalogue_path, read_catalogue  # noqa: E402
from services.languages import LANGUAGES  # noqa: E402


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str | list[str]]:
    flat: dict[str, str | list[str]] = {}
    for key, value in tree.items():
        if not isinstance(key, str):  # YAML 1.1 reads yes/no/on/off keys as booleans
            raise ValueError(f"catalogue key {prefix}{key!r} is not a string: quote it")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = [str(form) for form in value]
        else:
            flat[name] = str(value)
    return flat


def message(key: str, value: str | list[str]) -> Message:
    if isinstance(value, str):
        return Message(key, value)
    return Message((key, key), tuple(value))


def new_catalogue(lang: str) -> Catalog:
    return Catalog(locale=lang, domain=DOMAIN, project="citybots", version="1", fuzzy=False)


def write(catalogue: Catalog, path: Path) -> None:
    out = BytesIO()
    write_po(out, catalogue, width=0, omit_header=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())


def git(*args: str) -> str:
    command = ["git", "-C", str(ROOT), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def yaml_at(ref: str, lang: str) -> str | None:
    try:
        return git("show", f"{ref}:flows/locales/{lang}.yml")
    except subprocess.CalledProcessError:
        return None


def converted_keys(lang: str) -> set[str]:
    """The keys the YAML catalogue held when the commit that removed it was made."""
    removed = git("log", "--format=%H", "--diff-filter=D", "--", f"flows/locales/{lang}.yml")
    commits = removed.split()
    if not commits:
        return set()
    before = yaml_at(f"{commits[-1]}^", lang)
    return set(flatten(yaml.safe_load(before) or {})) if before else set()


def carry(source: str, target: Path, lang: str, skip: set[str]) -> tuple[list[str], int]:
    """Append the keys of the YAML text ``source`` that are missing from ``target`` and not
    in ``skip``: (keys added, how many were there already)."""
    texts = flatten(yaml.safe_load(source) or {})
    catalogue = read_catalogue(target, lang) if target.exists() else new_catalogue(lang)
    added, kept = [], 0
    for key, value in texts.items():
        if key in skip or catalogue.get(key) is not None:
            kept += 1
            continue
        catalogue[key] = message(key, value)
        added.append(key)
    if isinstance(catalogue.num_plurals, int):
        for key in added:
            forms = texts[key]
            if isinstance(forms, list) and len(forms) != catalogue.num_plurals:
                raise SystemExit(
                    f"{source}: {key} has {len(forms)} forms, {lang} has {catalogue.num_plurals}"
                )
    write(catalogue, target)
    return added, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yaml", type=Path, default=ROOT / "flows" / "locales")
    parser.add_argument("--locales", type=Path, default=ROOT / "presentation" / "locales")
    parser.add_argument("--from-ref", help="read the YAML files from this git commit or branch")
    parser.add_argument("--keep", action="store_true", help="leave the YAML files in place")
    args = parser.parse_args(argv)
    for lang in LANGUAGES:
        path = args.yaml / f"{lang}.yml"
        if args.from_ref:
            source = yaml_at(args.from_ref, lang)
        else:
            source = path.read_text(encoding="utf-8") if path.exists() else None
        if source is None:
            continue
        target = catalogue_path(lang, args.locales)
        added, kept = carry(source, target, lang, converted_keys(lang))
        print(f"{lang}: {len(added)} keys carried over, {kept} there already")
        print(*(f"  + {k}" for k in added), sep="\n")
        if path.exists() and not args.keep and not args.from_ref:
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
