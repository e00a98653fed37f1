"""Training data in Rasa 3 format (``version: "3.1"``, ``nlu:`` with ``- intent:`` and an
``examples: |`` block), one file per language, so the same files train in Rasa unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from services.languages import LANGUAGES

INTENTS = (
    "greet",
    "goodbye",
    "thanks",
    "human_handoff",
    "out_of_scope",
    "faq_what_is_covid",
    "faq_source_of_infection",
    "faq_transmission",
    "faq_origin",
    "faq_vaccine",
    "faq_treatment",
    "faq_symptoms",
    "faq_what_if_symptoms",
    "faq_pcr_testing",
    "faq_status_colors",
    "faq_status_duration",
    "faq_checkin_howto",
    "faq_no_smartphone",
    "faq_business_qr",
    "faq_data_privacy",
    "faq_permit_howto",
    "faq_quarantine_rules",
    "faq_masks_distancing",
    "faq_hotline_numbers",
)


class NluDataError(ValueError):
    """Training data that cannot be used; the message says which file and where."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str


def data_dir(kind: str = "data") -> Path:
    """``data`` (training) or ``heldout`` (paraphrases never trained on)."""
    return Path(str(resources.files("nlu").joinpath(kind)))


def load_file(path: Path, language: str) -> list[Example]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise NluDataError(f"{path}: cannot be read as YAML ({error})") from None
    if not isinstance(document, dict) or str(document.get("version")) != "3.1":
        raise NluDataError(f'{path}: must start with version: "3.1"')
    items = document.get("nlu")
    if not isinstance(items, list):
        raise NluDataError(f"{path}: needs an nlu: list")
    examples = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("intent"), str):
            raise NluDataError(f"{path}: nlu[{n}] needs an intent")
        block = item.get("examples")
        if not isinstance(block, str):
            raise NluDataError(f"{path}: nlu[{n}] ({item['intent']}) needs an examples: | block")
        for line in block.splitlines():
            line = line.strip()
            if not line:
                continue
            if not line.startswith("- "):
                raise NluDataError(f"{path}: {item['intent']}: every example starts with '- '")
            examples.append(Example(line[2:].strip(), item["intent"], language))
    return examples


def load(kind: str = "data", folder: Path | None = None) -> list[Example]:
    """Every example of every language; each language's file covers every intent."""
    folder = folder or data_dir(kind)
    examples: list[Example] = []
    for language in LANGUAGES:
        path = folder / f"{language}.yml"
        found = load_file(path, language)
        missing = sorted(set(INTENTS) - {e.intent for e in found})
        if missing and kind == "data":
            raise NluDataError(f"{path}: no examples for " + ", ".join(missing))
        unknown = sorted({e.intent for e in found} - set(INTENTS))
        if unknown:
            raise NluDataError(f"{path}: unknown intents " + ", ".join(unknown))
        examples.extend(found)
    return examples


def fingerprint(folder: Path | None = None) -> str:
    """A digest of the training files: the cached model is retrained when it changes."""
    folder = folder or data_dir()
    digest = hashlib.sha256()
    for language in LANGUAGES:
        digest.update((folder / f"{language}.yml").read_bytes())
    return digest.hexdigest()[:16]
