"""Evaluation metrics of the BERT tasks: accuracy, F1, MCC, Pearson/Spearman, SQuAD EM/F1.

Functions take label and prediction arrays; the metric classes accumulate batches with MXNet's
EvalMetric interface (`update(labels, preds)`, `get()`, `reset()`), where predictions may be
class scores (N, C) (arg-maxed) or class ids (N,).
"""
from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import mxnet as mx
    from numpy.typing import ArrayLike

    # what the metrics score: numpy arrays, lists, or MXNet NDArrays
    Values = ArrayLike | mx.nd.NDArray


def _to_numpy(x):
    if hasattr(x, 'asnumpy'):
        return x.asnumpy()
    return np.asarray(x)


def _class_ids(preds):
    preds = _to_numpy(preds)
    if preds.ndim == 2:
        return preds.argmax(axis=1)
    if preds.ndim != 1:
        raise ValueError('predictions must be class scores (N, C) or class ids (N,); got shape '
                         f'{preds.shape}')
    return preds


def _pair(labels, preds, classify=True):
    labels = _to_numpy(labels).reshape(-1)
    preds = _class_ids(preds) if classify else _to_numpy(preds).reshape(-1)
    if labels.shape != preds.shape:
        raise ValueError(f'{labels.size} labels but {preds.size} predictions')
    if labels.size == 0:
        raise ValueError('no labels to score')
    return labels, preds


def accuracy(labels: Values, preds: Values) -> float:
    """Share of predictions equal to the labels (preds: ids (N,) or scores (N, C))."""
    labels, preds = _pair(labels, preds)
    return float(np.mean(labels.astype(np.int64) == preds.astype(np.int64)))


def f1_score(labels: Values, preds: Values, positive: int = 1) -> float:
    """Binary F1 of the `positive` class (0 when it is never predicted nor present)."""
    labels, preds = _pair(labels, preds)
    tp = np.sum((preds == positive) & (labels == positive))
    fp = np.sum((preds == positive) & (labels != positive))
    fn = np.sum((preds != positive) & (labels == positive))
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def matthews_corrcoef(labels: Values, preds: Values) -> float:
    """Matthews correlation coefficient (multi-class form; the binary MCC for two classes)."""
    labels, preds = _pair(labels, preds)
    classes = np.union1d(labels, preds)
    index = {c: i for i, c in enumerate(classes.tolist())}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, ([index[c] for c in labels.tolist()],
                          [index[c] for c in preds.tolist()]), 1)
    n = confusion.sum()
    correct = np.trace(confusion)
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    numerator = correct * n - true_counts @ pred_counts
    denominator = np.sqrt((n ** 2 - pred_counts @ pred_counts) *
                          (n ** 2 - true_counts @ true_counts))
    return float(numerator / denominator) if denominator else 0.0


def pearson_corr(labels: Values, preds: Values) -> float:
    """Pearson correlation of two score arrays (nan if either is constant)."""
    labels, preds = _pair(labels, preds, classify=False)
    x = labels.astype(np.float64) - labels.mean()
    y = preds.astype(np.float64) - preds.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else float('nan')


def rank_average(values: ArrayLike) -> np.ndarray:
    """Ranks 1..N of values, ties getting the average of their ranks (as scipy's rankdata)."""
    values = np.asarray(values)
    order = np.argsort(values, kind='stable')
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    starts = np.r_[0, np.nonzero(sorted_values[1:] != sorted_values[:-1])[0] + 1]
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman_corr(labels: Values, preds: Values) -> float:
    """Spearman rank correlation (Pearson of tie-averaged ranks)."""
    labels, preds = _pair(labels, preds, classify=False)
    return pearson_corr(rank_average(labels), rank_average(preds))


class Metric:
    """Accumulates (labels, preds) batches; `get()` -> (name, value) over everything seen."""
    name = 'metric'
    classify = True

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        """Forget all batches."""
        self._labels, self._preds = [], []

    def update(self, labels: Values | Sequence[Values], preds: Values | Sequence[Values]
               ) -> None:
        """Add a batch, or lists of batches as MXNet metrics take them."""
        if isinstance(labels, (list, tuple)) and labels and hasattr(labels[0], 'shape'):
            for batch_labels, batch_preds in zip(labels, preds):
                self.update(batch_labels, batch_preds)
            return
        labels, preds = _pair(labels, preds, self.classify)
        self._labels.append(labels)
        self._preds.append(preds)

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        """The metric on full arrays."""
        raise NotImplementedError

    def get(self) -> tuple[str, float]:
        """(name, value); value is nan before any update."""
        if not self._labels:
            return self.name, float('nan')
        return self.name, self.compute(np.concatenate(self._labels), np.concatenate(self._preds))

    def get_name_value(self) -> list[tuple[str, float]]:
        """[(name, value)] as MXNet metrics return it."""
        return [self.get()]


class Accuracy(Metric):
    """Classification accuracy."""
    name = 'accuracy'

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        return accuracy(labels, preds)


class F1(Metric):
    """Binary F1 of class 1."""
    name = 'f1'

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        return f1_score(labels, preds)


class MCC(Metric):
    """Matthews correlation coefficient."""
    name = 'mcc'

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        return matthews_corrcoef(labels, preds)


class PearsonCorrelation(Metric):
    """Pearson correlation of regression scores (N,) or (N, 1)."""
    name = 'pearsonr'
    classify = False

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        return pearson_corr(labels, preds)


class SpearmanCorrelation(Metric):
    """Spearman rank correlation of regression scores."""
    name = 'spearmanr'
    classify = False

    def compute(self, labels: np.ndarray, preds: np.ndarray) -> float:
        return spearman_corr(labels, preds)


class MetricGroup:
    """Several metrics updated together; `get()` -> (names, values) like CompositeEvalMetric."""

    def __init__(self, metrics: Iterable[Metric]):
        self.metrics = list(metrics)

    def update(self, labels: Values | Sequence[Values], preds: Values | Sequence[Values]
               ) -> None:
        """Forward the batch to every metric."""
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        """Reset every metric."""
        for metric in self.metrics:
            metric.reset()

    def get(self) -> tuple[list[str], list[float]]:
        """(list of names, list of values)."""
        pairs = self.get_name_value()
        return [name for name, _ in pairs], [value for _, value in pairs]

    def get_name_value(self) -> list[tuple[str, float]]:
        """[(name, value), ...]."""
        return [metric.get() for metric in self.metrics]


METRICS = dict(accuracy=Accuracy, f1=F1, mcc=MCC, pearsonr=PearsonCorrelation,
               spearmanr=SpearmanCorrelation)


def create_metric(names: str | Iterable[str]) -> MetricGroup:
    """'accuracy' or ['accuracy', 'f1'] -> a MetricGroup of fresh metrics."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f'unknown metric(s) {unknown}; known: {sorted(METRICS)}')
    return MetricGroup(METRICS[n]() for n in names)


# ----- SQuAD v1.1 (the official evaluation script's normalization and scores) -----

_ARTICLES = re.compile(r'\b(a|an|the)\b')
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = ''.join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return ' '.join(_ARTICLES.sub(' ', text).split())


def squad_exact_match(prediction: str, ground_truth: str) -> float:
    """1.0 when the normalized strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def squad_f1(prediction: str, ground_truth: str) -> float:
    """Bag-of-tokens F1 of the normalized strings."""
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_evaluate(answers: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
                   ) -> dict[str, float]:
    """{qas_id: [gold answer texts]}, {qas_id: predicted text} -> {'exact_match', 'f1'} in %.

    Each question scores its best match over the gold answers; unanswered questions score 0.
    """
    if not answers:
        raise ValueError('no gold answers to evaluate against')
    exact = f1 = 0.0
    for qas_id, golds in answers.items():
        if not golds:
            raise ValueError(f'question {qas_id} has no gold answer')
        if qas_id not in predictions:
            continue
        prediction = predictions[qas_id]
        exact += max(squad_exact_match(prediction, gold) for gold in golds)
        f1 += max(squad_f1(prediction, gold) for gold in golds)
    return {'exact_match': 100.0 * exact / len(answers), 'f1': 100.0 * f1 / len(answers)}
