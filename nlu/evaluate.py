"""How well the classifier understands: stratified k-fold cross-validation on the
training data (accuracy per language and intent, the most frequent confusions), and the
accuracy on the held-out paraphrases it never trains on."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from nlu.data import Example
from nlu.model import IntentModel, train


@dataclass
class Report:
    folds: int
    examples: int
    correct: Counter[str] = field(default_factory=Counter)  # by language
    total: Counter[str] = field(default_factory=Counter)
    intent_correct: Counter[str] = field(default_factory=Counter)
    intent_total: Counter[str] = field(default_factory=Counter)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    heldout_correct: Counter[str] = field(default_factory=Counter)
    heldout_total: Counter[str] = field(default_factory=Counter)

    def accuracy(self, language: str) -> float:
        return self.correct[language] / max(self.total[language], 1)

    def heldout_accuracy(self, language: str) -> float:
        return self.heldout_correct[language] / max(self.heldout_total[language], 1)

    def as_json(self) -> dict[str, object]:
        return {
            "folds": self.folds,
            "examples": self.examples,
            "cross_validated_accuracy": {
                lang: round(self.accuracy(lang), 4) for lang in self.total
            },
            "heldout_accuracy": {
                lang: round(self.heldout_accuracy(lang), 4) for lang in self.heldout_total
            },
            "intents": {
                i: round(self.intent_correct[i] / self.intent_total[i], 4)
                for i in sorted(self.intent_total)
            },
            "confusions": [
                {"intent": a, "predicted": b, "count": n}
                for (a, b), n in self.confusions.most_common(15)
            ],
        }


def _score(model: IntentModel, examples: list[Example]) -> list[tuple[Example, str]]:
    if not examples:
        return []
    probabilities = model.scores([e.text for e in examples])
    return [
        (e, model.intents[int(p.argmax())]) for e, p in zip(examples, probabilities, strict=True)
    ]


def evaluate(
    examples: list[Example],
    heldout: list[Example],
    *,
    folds: int = 5,
    seed: int = 13,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Each (intent, language) group is dealt round-robin into the folds after a seeded
    shuffle, so every fold sees every intent in every language."""
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for e in examples:
        groups[(e.intent, e.language)].append(e)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    fold_of: dict[int, int] = {}
    for members in groups.values():
        order = list(members)
        rng.shuffle(order)
        for n, e in enumerate(order):
            fold_of[id(e)] = n % folds
    report = Report(folds, len(examples))
    for fold in range(folds):
        train_set = [e for e in examples if fold_of[id(e)] != fold]
        test_set = [e for e in examples if fold_of[id(e)] == fold]
        for e, predicted in _score(train(train_set), test_set):
            report.total[e.language] += 1
            report.intent_total[e.intent] += 1
            if predicted == e.intent:
                report.correct[e.language] += 1
                report.intent_correct[e.intent] += 1
            else:
                report.confusions[(e.intent, predicted)] += 1
        if progress:
            progress(fold + 1, folds + 1)
    for e, predicted in _score(train(examples), heldout):
        report.heldout_total[e.language] += 1
        report.heldout_correct[e.language] += predicted == e.intent
    if progress:
        progress(folds + 1, folds + 1)
    return report
