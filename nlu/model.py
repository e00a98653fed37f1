"""The embedded intent classifier: multinomial logistic regression over TF-IDF weighted
hashed features (nlu/features.py), trained with numpy alone (full-batch Adam, L2), in
seconds. Only the feature buckets seen in training are kept, so the artefact is small
and a parse touches a few hundred weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlu.data import Example
from nlu.features import features

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Sparse:
    """Rows of (column, value) pairs, flattened: row i is rows == i."""

    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    values: FloatArray
    count: int


def _counts(texts: Sequence[str]) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    out = []
    for text in texts:
        counted = features(text)
        buckets = np.fromiter(counted.keys(), dtype=np.int64, count=len(counted))
        tf = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
        out.append((buckets, 1.0 + np.log(tf)))
    return out


@dataclass
class IntentModel:
    intents: list[str]
    buckets: npt.NDArray[np.int64]  # sorted feature buckets seen in training
    idf: FloatArray
    weights: FloatArray  # (len(buckets), len(intents))
    bias: FloatArray
    fingerprint: str = ""

    def _vectorise(self, texts: Sequence[str]) -> _Sparse:
        rows, cols, values = [], [], []
        for i, (buckets, tf) in enumerate(_counts(texts)):
            position = np.searchsorted(self.buckets, buckets)
            position = np.minimum(position, len(self.buckets) - 1)
            known = self.buckets[position] == buckets
            weighted = tf[known] * self.idf[position[known]]
            norm = math.sqrt(float(weighted @ weighted)) or 1.0
            rows.append(np.full(int(known.sum()), i, dtype=np.int64))
            cols.append(position[known])
            values.append(weighted / norm)
        return _Sparse(
            np.concatenate(rows) if rows else np.zeros(0, np.int64),
            np.concatenate(cols) if cols else np.zeros(0, np.int64),
            np.concatenate(values) if values else np.zeros(0),
            len(texts),
        )

    def scores(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, one row per text."""
        x = self._vectorise(texts)
        logits = _times(x, self.weights) + self.bias
        return _softmax(logits)

    def rank(self, text: str) -> list[tuple[str, float]]:
        probabilities = self.scores([text])[0]
        order = np.argsort(-probabilities)
        return [(self.intents[i], float(probabilities[i])) for i in order]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            intents=np.array(self.intents),
            buckets=self.buckets,
            idf=self.idf,
            weights=self.weights.astype(np.float32),
            bias=self.bias,
            fingerprint=np.array(self.fingerprint),
        )
        tmp.replace(path)  # a reader never sees half a file

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                intents=[str(i) for i in saved["intents"]],
                buckets=saved["buckets"],
                idf=saved["idf"],
                weights=saved["weights"].astype(np.float64),
                bias=saved["bias"],
                fingerprint=str(saved["fingerprint"]),
            )


def _sum_by(keys: npt.NDArray[np.int64], rows: FloatArray, size: int) -> FloatArray:
    """Sum ``rows`` grouped by ``keys`` (sorted) into ``size`` groups (one C loop)."""
    out = np.zeros((size, rows.shape[1]))
    if len(keys):
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        out[keys[starts]] = np.add.reduceat(rows, starts, axis=0)
    return out


def _times(x: _Sparse, weights: FloatArray) -> FloatArray:
    """X @ W for sparse X whose entries are in row order."""
    return _sum_by(x.rows, x.values[:, None] * weights[x.cols], x.count)


def _transposed_times(
    x: _Sparse, g: FloatArray, size: int, by_column: npt.NDArray[np.int64]
) -> FloatArray:
    """X.T @ G for sparse X; ``by_column`` orders its entries by column."""
    cols, rows, values = x.cols[by_column], x.rows[by_column], x.values[by_column]
    return _sum_by(cols, values[:, None] * g[rows], size)


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def train(
    examples: Sequence[Example],
    *,
    fingerprint: str = "",
    epochs: int = 100,
    l2: float = 1e-4,
    rate: float = 0.1,
) -> IntentModel:
    intents = sorted({e.intent for e in examples})
    index = {intent: i for i, intent in enumerate(intents)}
    counted = _counts([e.text for e in examples])
    buckets = np.unique(np.concatenate([b for b, _ in counted]))
    document_frequency = np.zeros(len(buckets))
    for b, _ in counted:
        document_frequency[np.searchsorted(buckets, b)] += 1
    idf = np.log((1 + len(examples)) / (1 + document_frequency)) + 1.0
    model = IntentModel(
        intents,
        buckets,
        idf,
        np.zeros((len(buckets), len(intents))),
        np.zeros(len(intents)),
        fingerprint,
    )
    x = model._vectorise([e.text for e in examples])
    by_column = np.argsort(x.cols, kind="stable")
    y = np.zeros((len(examples), len(intents)))
    y[np.arange(len(examples)), [index[e.intent] for e in examples]] = 1.0
    # Full-batch Adam on the mean cross-entropy with L2.
    m_w = np.zeros_like(model.weights)
    v_w = np.zeros_like(model.weights)
    m_b = np.zeros_like(model.bias)
    v_b = np.zeros_like(model.bias)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        p = _softmax(_times(x, model.weights) + model.bias)
        g = (p - y) / len(examples)
        grad_w = _transposed_times(x, g, len(buckets), by_column) + l2 * model.weights
        grad_b = g.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * grad_w
        v_w = beta2 * v_w + (1 - beta2) * grad_w**2
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b**2
        correction1, correction2 = 1 - beta1**step, 1 - beta2**step
        model.weights -= rate * (m_w / correction1) / (np.sqrt(v_w / correction2) + eps)
        model.bias -= rate * (m_b / correction1) / (np.sqrt(v_b / correction2) + eps)
    return model
