"""`citybots nlu train | parse | evaluate`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from citybots.commands import command_error
from citybots.progress import counted
from citybots.settings import Settings
from nlu.data import NluDataError, load
from nlu.evaluate import evaluate
from nlu.service import Nlu, bundle_dir, load_or_train


def add_parser(commands: Any) -> None:
    nlu = commands.add_parser("nlu", help="the hotline's language understanding")
    nlu_commands = nlu.add_subparsers(dest="nlu_command", required=True)
    training = nlu_commands.add_parser("train", help="train the embedded classifier from nlu/data")
    training.add_argument(
        "--bundle",
        action="store_true",
        help="put the model for the current data into the installed package (image builds, "
        "make install) unless it is there, so that no start trains while the data is unchanged",
    )
    parse = nlu_commands.add_parser(
        "parse", help="parse TEXT, or one text per line of standard input, as JSON lines"
    )
    parse.add_argument("text", nargs="*")
    evaluating = nlu_commands.add_parser(
        "evaluate", help="cross-validated accuracy per language and intent, and confusions"
    )
    evaluating.add_argument("--folds", type=int, default=5)
    evaluating.add_argument("--json", action="store_true")


def nlu_command(settings: Settings, args: argparse.Namespace) -> int:
    cache = settings.data_dir / "nlu"
    try:
        if args.nlu_command == "train":
            target = bundle_dir() if args.bundle else cache
            # The bundle is rebuilt only when the data changed (make install runs it often).
            model, seconds = load_or_train(target, force=not args.bundle, bundled=target)
            done = f"trained in {seconds:.1f} s" if seconds else "already there, for this data"
            print(f"{len(load())} examples, {len(model.intents)} intents: {done} -> {target}")
            return 0
        if args.nlu_command == "parse":
            nlu = Nlu(load_or_train(cache)[0])
            texts = (
                [" ".join(args.text)] if args.text else (line.rstrip("\n") for line in sys.stdin)
            )
            for text in texts:
                print(json.dumps(nlu.parse(text), ensure_ascii=False), flush=True)
            return 0
        if args.folds < 2:
            return command_error("--folds must be at least 2", 2)
        progress = counted("evaluating", unit="trainings")
        report = evaluate(load(), load("heldout"), folds=args.folds, progress=progress)
    except NluDataError as error:
        return command_error(str(error), 2)
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
        return 0
    summary = report.as_json()
    print(f"{report.examples} examples, {report.folds}-fold cross-validation:")
    for lang, accuracy in summary["cross_validated_accuracy"].items():  # type: ignore[attr-defined]
        held = report.heldout_accuracy(lang)
        print(f"  {lang}: {accuracy:.1%} cross-validated, {held:.1%} on held-out paraphrases")
    print("per intent (cross-validated):")
    for intent, accuracy in summary["intents"].items():  # type: ignore[attr-defined]
        print(f"  {intent:<26} {accuracy:.1%}")
    print("most frequent confusions (intent -> predicted):")
    for c in summary["confusions"]:  # type: ignore[attr-defined]
        print(f"  {c['intent']} -> {c['predicted']}: {c['count']}")
    return 0
