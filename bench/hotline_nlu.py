"""NLU figures: training time from the data, parse latency in process, and top-1 accuracy
per language on the held-out paraphrases (nlu/heldout, never trained on).

.venv/bin/python bench/hotline_nlu.py [--parses 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import percentile  # bench/ is the script's folder

from nlu.data import LANGUAGES, load
from nlu.service import Nlu, load_or_train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parses", type=int, default=5000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        model, seconds = load_or_train(Path(tmp))
    print(f"training: {seconds:.1f} s from {len(load())} examples ({len(model.intents)} intents)")
    nlu = Nlu(model)
    heldout = load("heldout")
    right, total = Counter[str](), Counter[str]()
    for e in heldout:
        total[e.language] += 1
        right[e.language] += nlu.parse(e.text)["intent"]["name"] == e.intent
    for language in LANGUAGES:
        print(
            f"held-out top-1 accuracy, {language}: {right[language] / total[language]:.1%} "
            f"({right[language]}/{total[language]})"
        )
    texts = [e.text for e in heldout]
    timings = []
    for n in range(args.parses):
        started = time.perf_counter()
        nlu.parse(texts[n % len(texts)])
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"parse in process: median {statistics.median(timings):.2f} ms, "
        f"p99 {percentile(timings, 0.99):.2f} ms over {args.parses:,} parses"
    )


if __name__ == "__main__":
    main()
