"""GluonNLP 0.10's line-based datasets: `TSVDataset` and the `Splitter` it splits fields with."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

from mxnet.gluon.data import SimpleDataset

from .readers import read_text


class Splitter:
    """Split a string on `separator` (GluonNLP's nlp.data.Splitter): 'a\\tb' -> ['a', 'b']."""

    def __init__(self, separator: str | None = None):
        self._separator = separator

    def __call__(self, text: str) -> list[str]:
        return text.split(self._separator)


class TSVDataset(SimpleDataset):
    """A delimited text file, one sample per line (GluonNLP 0.10's nlp.data.TSVDataset).

    filename: a path or a list of paths, read as UTF-8 (a BOM is dropped); num_discard_samples
    lines are skipped at the start of each file (a header); field_indices picks and orders the
    fields of every sample. A line without the requested fields raises naming the file and
    line; with allow_missing=True it is left out with one warning per file ('N incomplete
    samples in <file>'), as GluonNLP does.
    """

    def __init__(self, filename: str | Sequence[str], encoding: str = 'utf8',
                 sample_splitter: Callable[[str], list[str]] = str.splitlines,
                 field_separator: Callable[[str], list[str]] = Splitter('\t'),
                 num_discard_samples: int = 0, field_indices: Sequence[int] | None = None,
                 allow_missing: bool = False):
        if encoding.replace('-', '').lower() not in ('utf8', 'utf8sig'):
            raise ValueError(f'TSVDataset reads UTF-8 files; got encoding={encoding!r}: '
                             're-encode the file as UTF-8')
        paths = [filename] if isinstance(filename, str) else list(filename)
        samples = []
        for path in paths:
            lines = [line for line in sample_splitter(read_text(path)) if line.strip()]
            incomplete = 0
            for number, line in enumerate(lines[num_discard_samples:],
                                          start=num_discard_samples + 1):
                fields = field_separator(line)
                if field_indices is not None:
                    if max(field_indices) >= len(fields):
                        if not allow_missing:
                            raise ValueError(
                                f'{path}, sample {number}: {len(fields)} fields, but '
                                f'field_indices={list(field_indices)} asks for field '
                                f'{max(field_indices)}; fix the line or pass allow_missing=True '
                                '(to leave such lines out)')
                        incomplete += 1
                        continue
                    fields = [fields[i] for i in field_indices]
                samples.append(fields)
            if incomplete:
                warnings.warn(f'{incomplete} incomplete samples in {path}', stacklevel=2)
        super().__init__(samples)
