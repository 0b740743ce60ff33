"""Readers for TSV, CSV and JSON-lines files: column selection, header/BOM handling, labels.

Every problem in a file is a ReaderError naming the file and the line. Samples are tuples
(text fields..., label) in a TextDataset (an MXNet SimpleDataset) that remembers each sample's
line and how many rows were skipped on purpose (e.g. SNLI's '-' gold labels).
"""
from __future__ import annotations

import csv
import io
import json
import numbers
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from mxnet.gluon.data import SimpleDataset


class ReaderError(ValueError):
    """Bad content in a data file; the message names the file and the line."""


class TextDataset(SimpleDataset):
    """Samples read from one file, with `line_numbers` (per sample) and `num_skipped`."""

    def __init__(self, samples: Iterable[Any], source: str = '',
                 line_numbers: Iterable[int] | None = None, num_skipped: int = 0,
                 fields: Iterable[str] = ()):
        super().__init__(list(samples))
        self.source = source
        self.line_numbers = list(line_numbers) if line_numbers is not None else []
        self.num_skipped = num_skipped
        self.fields = tuple(fields)

    def __repr__(self):
        return 'TextDataset({} samples from {}, fields={}, skipped={})'.format(
            len(self), self.source or '<memory>', self.fields, self.num_skipped)


def read_text(path: str | os.PathLike) -> str:
    """File -> str: UTF-8 (a leading BOM is dropped); undecodable bytes raise naming the line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'data file not found: {path}')
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as err:
        line = raw.count(b'\n', 0, err.start) + 1
        column = err.start - (raw.rfind(b'\n', 0, err.start) + 1) + 1
        raise ReaderError(f'{path}, line {line}: not valid UTF-8 (byte '
                          f'{raw[err.start:err.start + 1]!r} at column {column}); re-encode the '
                          'file as UTF-8') from None
    return text[1:] if text.startswith('\ufeff') else text


# what `labels` may be: class names by position, an explicit mapping, or a converter
LabelSet = Sequence[str] | Mapping[str, Any] | Callable[[str], Any]


class LabelMap:
    """Raw label (str) -> value: a list gives class ids by position, a dict maps explicitly,
    a callable converts (e.g. float for regression scores)."""

    def __init__(self, labels: LabelSet):
        self.labels = labels
        if isinstance(labels, dict):
            self._table = dict(labels)
        elif callable(labels):
            self._table = None
        else:
            labels = list(labels)
            if len(set(labels)) != len(labels):
                raise ValueError(f'label set has duplicates: {labels}')
            self._table = {label: i for i, label in enumerate(labels)}

    def __call__(self, raw: str) -> Any:
        if self._table is None:
            try:
                return self.labels(raw)
            except (TypeError, ValueError) as err:
                raise ValueError(f'label {raw!r} cannot be converted: {err}') from None
        if raw not in self._table:
            raise ValueError(f'label {raw!r} is not in the label set {list(self._table)}')
        return self._table[raw]


def finite_float(raw: str) -> float:
    """Label converter for regression targets: '3.8' -> 3.8; 'nan', 'inf' and text are errors."""
    value = float(raw)
    if not np.isfinite(value):
        raise ValueError(f'{raw!r} is not a finite number')
    return value


def _resolve_columns(wanted, header, path):
    """Field names or indices -> column indices (names need a header)."""
    indices = []
    for field in wanted:
        if isinstance(field, numbers.Integral):
            indices.append(int(field))
        elif header is None:
            raise ValueError(f'field {field!r} is a column name but {path} is read without a '
                             f'header; use '
                             'column numbers')
        elif field not in header:
            raise ReaderError(f'{path}, line 1: no column named {field!r}; the header has {header}')
        else:
            indices.append(header.index(field))
    return indices


def _rows_tsv(text):
    """(line number, fields) for each non-empty line; fields are tab-split, quotes untouched."""
    for number, line in enumerate(text.split('\n'), start=1):
        line = line[:-1] if line.endswith('\r') else line
        if line:
            yield number, line.split('\t')


def _rows_csv(text, delimiter):
    """(first line number, fields) of each CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ReaderError(f'line {reader.line_num}: malformed CSV ({err})') from None
        if row:
            yield start, row
        start = reader.line_num + 1


def read_table(path: str, fields: Sequence[str | int], label_field: str | int | None = None,
               labels: LabelSet | None = None, delimiter: str = '\t', header: bool = True,
               quoting: bool | None = None, skip_labels: Collection[str] = ()) -> TextDataset:
    """Read a delimited file -> TextDataset of tuples (fields..., label).

    fields / label_field: column names (with header=True) or 0-based column numbers.
    labels: see LabelMap; None keeps the raw label string. Rows whose raw label is in
    skip_labels are dropped and counted in `num_skipped`. quoting: None -> CSV quoting for
    ',' files and none for TSV (GLUE TSVs contain bare quote characters).
    """
    text = read_text(path)
    use_csv = (delimiter != '\t') if quoting is None else quoting
    rows = _rows_csv(text, delimiter) if use_csv else _rows_tsv(text)
    try:
        rows = list(rows)
    except ReaderError as err:
        raise ReaderError(f'{path}, {err}') from None
    names = None
    if header:
        if not rows:
            raise ReaderError(f'{path}: the file is empty but a header was expected')
        names = [name.strip() for name in rows[0][1]]
        rows = rows[1:]
    wanted = list(fields) + ([label_field] if label_field is not None else [])
    columns = _resolve_columns(wanted, names, path)
    width = len(names) if names is not None else max(columns) + 1
    label_map = LabelMap(labels) if labels is not None else None
    samples, line_numbers, skipped = [], [], 0
    for number, row in rows:
        if (names is not None and len(row) != width) or len(row) < width:
            raise ReaderError('{}, line {}: expected {} {}-separated columns{}, found {}: {!r}'
                              .format(path, number, width, repr(delimiter),
                                      f' (header: {names})' if names else '', len(row),
                                      _preview(row)))
        values = [row[c] for c in columns]
        if label_field is not None:
            raw = values[-1].strip()
            if raw in skip_labels:
                skipped += 1
                continue
            values[-1] = _map_label(label_map, raw, path, number)
        samples.append(tuple(values))
        line_numbers.append(number)
    return TextDataset(samples, path, line_numbers, skipped, [str(f) for f in wanted])


def _map_label(label_map, raw, path, number):
    if label_map is None:
        return raw
    try:
        return label_map(raw)
    except ValueError as err:
        raise ReaderError(f'{path}, line {number}: {err}') from None


def _preview(row, limit=120):
    text = '\t'.join(row)
    return text if len(text) <= limit else text[:limit] + '...'


def read_tsv(path: str, fields: Sequence[str | int], label_field: str | int | None = None,
             labels: LabelSet | None = None, header: bool = True,
             skip_labels: Collection[str] = ()) -> TextDataset:
    """Tab-separated file (no quote processing, as GLUE's TSVs need) -> TextDataset."""
    return read_table(path, fields, label_field, labels, delimiter='\t', header=header,
                      quoting=False, skip_labels=skip_labels)


def read_csv(path: str, fields: Sequence[str | int], label_field: str | int | None = None,
             labels: LabelSet | None = None, header: bool = True, delimiter: str = ',',
             skip_labels: Collection[str] = ()) -> TextDataset:
    """CSV file with standard quoting (fields may hold commas, quotes, newlines) -> TextDataset."""
    return read_table(path, fields, label_field, labels, delimiter=delimiter, header=header,
                      quoting=True, skip_labels=skip_labels)


def read_jsonl(path: str, fields: Sequence[str], label_field: str | None = None,
               labels: LabelSet | None = None, skip_labels: Collection[Any] = ()) -> TextDataset:
    """JSON-lines file (one object per line; fields are keys) -> TextDataset."""
    text = read_text(path)
    label_map = LabelMap(labels) if labels is not None else None
    wanted = list(fields) + ([label_field] if label_field is not None else [])
    samples, line_numbers, skipped = [], [], 0
    for number, line in enumerate(text.split('\n'), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ReaderError(f'{path}, line {number}: not valid JSON ({err})') \
                from None
        if not isinstance(record, dict):
            raise ReaderError(f'{path}, line {number}: expected a JSON object, got '
                              f'{type(record).__name__}')
        missing = [key for key in wanted if key not in record]
        if missing:
            raise ReaderError(f'{path}, line {number}: missing key(s) {missing}; the object has '
                              f'{sorted(record)}')
        values = [record[key] for key in wanted]
        for key, value in zip(fields, values):
            if not isinstance(value, str):
                raise ReaderError(f'{path}, line {number}: field {key!r} must be a string, got '
                                  f'{value!r}')
        if label_field is not None:
            raw = values[-1]
            if raw in skip_labels:
                skipped += 1
                continue
            values[-1] = _map_label(label_map, raw, path, number)
        samples.append(tuple(values))
        line_numbers.append(number)
    return TextDataset(samples, path, line_numbers, skipped, wanted)


FILE_FORMATS = ('csv', 'tsv', 'jsonl')


def file_format_of(path: str, given: str | None = None) -> str:
    """The format of a data file: `given`, else its extension (.csv, .tsv, .jsonl); anything
    else is a ValueError naming the fix."""
    fmt = given or os.path.splitext(path)[1].lstrip('.').lower()
    if fmt not in FILE_FORMATS:
        raise ValueError(f'cannot tell the format of {path} from its extension: name it .csv, '
                         '.tsv or .jsonl, or pass --file-format')
    return fmt


def read_columns(path: str, file_format: str) -> list[str]:
    """The column names of a data file: its header (CSV/TSV) or the keys of its first object
    (JSON lines)."""
    text = read_text(path)
    if file_format == 'jsonl':
        for number, line in enumerate(text.split('\n'), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ReaderError(f'{path}, line {number}: not valid JSON ({err})') from None
                return list(record) if isinstance(record, dict) else []
        return []
    rows = _rows_csv(text, ',') if file_format == 'csv' else _rows_tsv(text)
    try:
        return [name.strip() for name in next(iter(rows))[1]]
    except StopIteration:
        return []
    except ReaderError as err:
        raise ReaderError(f'{path}, {err}') from None


def train_test_split(dataset: Sequence[Any], test_fraction: float | int = 0.2,
                     seed: int = 0) -> tuple[TextDataset, TextDataset]:
    """Split a dataset into (train, test) TextDatasets by a seeded permutation.

    test_fraction: share (0 < f < 1) or number (int >= 1) of test samples. Both parts keep
    the original order of their samples.
    """
    n = len(dataset)
    if isinstance(test_fraction, numbers.Integral):
        num_test = int(test_fraction)
    elif 0 < test_fraction < 1:
        num_test = int(round(n * test_fraction))
    else:
        raise ValueError(f'test_fraction must be in (0, 1) or a count; got {test_fraction}')
    if not 0 < num_test < n:
        raise ValueError(f'a split of {n} samples into {num_test} test samples leaves a part empty')
    order = np.random.RandomState(seed).permutation(n)
    test_ids = np.sort(order[:num_test])
    train_ids = np.sort(order[num_test:])
    lines = getattr(dataset, 'line_numbers', None) or []
    source = getattr(dataset, 'source', '')
    fields = getattr(dataset, 'fields', ())

    def part(ids):
        return TextDataset([dataset[int(i)] for i in ids], source,
                           [lines[int(i)] for i in ids] if lines else None, 0, fields)
    return part(train_ids), part(test_ids)
