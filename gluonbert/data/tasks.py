"""Sentence(-pair) task definitions: file layout, label set, transform and metrics per task.

No downloads: `task.read(path)` reads a file you have (e.g. GLUE's SST-2/train.tsv).
"""
from __future__ import annotations

from .. import metrics as _metrics
import copy
import numbers
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from .readers import (TextDataset, file_format_of, finite_float, read_columns, read_csv,
                      read_jsonl, read_tsv)
from .tokenizer import BERTTokenizer
from .transforms import ClassificationTransform, RegressionTransform


class Task:
    """A classification or regression task over one text or a text pair.

    text_fields / label_field: columns (names or numbers) of the labeled files; test_fields:
    the text columns of unlabeled test files. labels: the label set (class id = position), or
    None for a regression task (float targets). metric_names: see gluonbert.metrics.METRICS.
    """

    def __init__(self, name: str, text_fields: Sequence[str | int], label_field: str | int,
                 labels: Iterable[Any] | None, metric_names: Iterable[str],
                 file_format: str = 'tsv', header: bool = True,
                 test_fields: Sequence[str | int] | None = None, test_header: bool = True,
                 skip_labels: Collection[str] = ()):
        if file_format not in ('tsv', 'csv', 'jsonl'):
            raise ValueError(f'file_format must be tsv, csv or jsonl; got {file_format!r}')
        self.name = name
        self.text_fields = tuple(text_fields)
        self.label_field = label_field
        self.labels = list(labels) if labels is not None else None
        self.metric_names = tuple(metric_names)
        self.file_format = file_format
        self.header = header
        self.test_fields = tuple(test_fields) if test_fields is not None else self.text_fields
        self.test_header = test_header
        self.skip_labels = tuple(skip_labels)

    @property
    def is_pair(self) -> bool:
        """True for text-pair tasks."""
        return len(self.text_fields) == 2

    @property
    def is_regression(self) -> bool:
        """True when the targets are real numbers."""
        return self.labels is None

    @property
    def num_classes(self) -> int:
        """Number of classes (1 for regression: one output)."""
        return 1 if self.is_regression else len(self.labels)

    def read(self, path: str, labeled: bool = True) -> TextDataset:
        """File -> TextDataset of (text[, text_b], label) (label: class id or float score),
        or of (text[, text_b]) with labeled=False (test files)."""
        labels = finite_float if self.is_regression else self.labels
        if self.file_format == 'jsonl':
            if not labeled:
                return read_jsonl(path, self.test_fields)
            return read_jsonl(path, self.text_fields, self.label_field, labels, self.skip_labels)
        reader = read_tsv if self.file_format == 'tsv' else read_csv
        if not labeled:
            return reader(path, self.test_fields, header=self.test_header)
        return reader(path, self.text_fields, self.label_field, labels, header=self.header,
                      skip_labels=self.skip_labels)

    def transform(self, tokenizer: BERTTokenizer, max_seq_length: int, pad: bool = False,
                  labeled: bool = True) -> ClassificationTransform:
        """The sample transform -> (input_ids, token_types, valid_length[, label])."""
        if self.is_regression:
            return RegressionTransform(tokenizer, max_seq_length, pair=self.is_pair, pad=pad,
                                       has_label=labeled)
        # read() already maps raw labels to class ids, so the transform checks the id range.
        return ClassificationTransform(tokenizer, max_seq_length, labels=range(self.num_classes),
                                       pair=self.is_pair, pad=pad, has_label=labeled)

    def metric(self) -> _metrics.MetricGroup:
        """A fresh MetricGroup of this task's metrics."""
        return _metrics.create_metric(self.metric_names)

    def for_file(self, path: str | None, file_format: str | None = None) -> Task:
        """This task reading files in the format of `path`'s extension (or `file_format`);
        itself when it already does or there is no path."""
        if path is None:
            return self
        fmt = file_format_of(path, file_format)
        if fmt == self.file_format:
            return self
        task = copy.copy(self)
        task.file_format = fmt
        return task

    def to_dict(self) -> dict:
        """JSON-able record of the task (run_config.json); `Task.from_dict` rebuilds it."""
        return dict(name=self.name, text_fields=list(self.text_fields),
                    label_field=self.label_field, labels=self.labels,
                    metric_names=list(self.metric_names), file_format=self.file_format,
                    header=self.header, test_fields=list(self.test_fields),
                    test_header=self.test_header, skip_labels=list(self.skip_labels))

    @classmethod
    def from_dict(cls, record: dict) -> Task:
        """The Task a `to_dict` record describes."""
        return cls(**record)

    def __repr__(self):
        return f'Task({self.name!r}, labels={self.labels}, metrics={list(self.metric_names)})'


SST2 = Task('SST-2', ['sentence'], 'label', ['0', '1'], ['accuracy'],
            test_fields=['sentence'])
MRPC = Task('MRPC', ['#1 String', '#2 String'], 'Quality', ['0', '1'], ['accuracy', 'f1'],
            test_fields=['#1 String', '#2 String'])
# GLUE's CoLA train/dev files have no header: source, label, original label, sentence.
COLA = Task('CoLA', [3], 1, ['0', '1'], ['mcc'], header=False, test_fields=['sentence'])
STSB = Task('STS-B', ['sentence1', 'sentence2'], 'score', None, ['pearsonr', 'spearmanr'])
SNLI = Task('SNLI', ['sentence1', 'sentence2'], 'gold_label',
            ['contradiction', 'entailment', 'neutral'], ['accuracy'], file_format='jsonl',
            skip_labels=['-'])
# A `review,sentiment` CSV such as the IMDB 50k reviews file; split it with train_test_split.
IMDB = Task('IMDB', ['review'], 'sentiment', ['negative', 'positive'], ['accuracy'],
            file_format='csv')

TASKS = {task.name.lower(): task for task in (SST2, MRPC, COLA, STSB, SNLI, IMDB)}


def get_task(name: str) -> Task:
    """Task by name, case-insensitive: sst-2, mrpc, cola, sts-b, snli, imdb."""
    key = name.lower()
    if key not in TASKS:
        raise ValueError(f'unknown task {name!r}; known: {sorted(TASKS)}')
    return TASKS[key]


# columns a data file needs no --task for: a text, an optional second text, a label
TEXT_COLUMNS = ('text', 'sentence', 'sentence1', 'text_a')
SECOND_TEXT_COLUMNS = ('text_pair', 'text_b', 'sentence2', 'text2', 'second_text')


def task_metrics(labels: Sequence[Any] | None) -> list[str]:
    """Metric names for a label set: accuracy (+ f1 for two classes), or pearsonr/spearmanr
    for regression (labels None)."""
    if labels is None:
        return ['pearsonr', 'spearmanr']
    return ['accuracy', 'f1'] if len(labels) == 2 else ['accuracy']


def is_regression_labels(raw_labels: Iterable[Any]) -> bool:
    """The rule for files without --task: the targets are real numbers when every label is a
    number and at least one is written as a non-integer ('3.8', '1.0', 0.5 in JSON); integer
    labels ('0', '1', 5) are class names."""
    values = list(raw_labels)
    if not values:
        return False
    written_as_float = False
    for value in values:
        if isinstance(value, bool):
            return False
        if isinstance(value, numbers.Number):
            written_as_float |= isinstance(value, float)
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        try:
            int(value)
        except ValueError:
            written_as_float = True
    return written_as_float


def infer_task(path: str, file_format: str | None = None, label_column: str = 'label',
               regression: bool = False) -> Task:
    """A Task read off a data file's columns: a `text`/`sentence` column (and optionally a
    second text, see SECOND_TEXT_COLUMNS) and `label_column`. The label set is the sorted
    distinct labels of the file; see is_regression_labels (regression=True forces it)."""
    fmt = file_format_of(path, file_format)
    columns = read_columns(path, fmt)
    first = next((c for c in TEXT_COLUMNS if c in columns), None)
    if first is None or label_column not in columns:
        missing = [] if first else [f'a text column ({"/".join(TEXT_COLUMNS)})']
        missing += [] if label_column in columns else [f'a label column ({label_column!r})']
        raise ValueError(f'{path} has columns {columns}: no {" and no ".join(missing)}; pass '
                         '--task NAME (sst-2, mrpc, cola, sts-b, snli, imdb) or --text-columns '
                         'and --label-column')
    second = next((c for c in SECOND_TEXT_COLUMNS if c in columns), None)
    fields = [first] + ([second] if second else [])
    probe = Task('custom', fields, label_column, [], [], file_format=fmt)
    raw = [sample[-1] for sample in _read_raw_labels(probe, path)]
    if regression or is_regression_labels(raw):
        labels = None
    else:
        labels = sorted(set(raw), key=lambda v: (str(type(v)), v))
    return Task('custom', fields, label_column, labels, task_metrics(labels), file_format=fmt)


def _read_raw_labels(task, path):
    """The file's samples with their labels as written (no label set applied)."""
    if task.file_format == 'jsonl':
        return read_jsonl(path, task.text_fields, task.label_field)
    reader = read_tsv if task.file_format == 'tsv' else read_csv
    return reader(path, task.text_fields, task.label_field)
