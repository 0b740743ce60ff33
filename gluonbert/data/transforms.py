"""BERTSentenceTransform and the dataset transforms built on it.

BERTSentenceTransform returns GluonNLP's positional order (input_ids, valid_length, segment_ids)
so GluonNLP tutorial code runs unchanged; everything after it uses the model's order
(input_ids, token_types, valid_length[, label]).
"""
from __future__ import annotations

import collections
import itertools
import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .bert.glue import truncate_lengths_equal
from .tokenizer import BERTBasicTokenizer, BERTTokenizer
from .vocab import VocabLike, as_vocab

# GluonNLP 0.10 users reach the tokenizers as `nlp.data.transforms.BERTTokenizer`.
__all__ = ['BERTBasicTokenizer', 'BERTTokenizer', 'BERTSentenceTransform', 'SentenceFeatures',
           'ClassificationTransform', 'RegressionTransform', 'TruncationCounter',
           'truncate_pair_lengths']


class SentenceFeatures(collections.namedtuple('SentenceFeatures',
                                              ['input_ids', 'valid_length', 'segment_ids'])):
    """BERT inputs of one text (pair), in GluonNLP's order; `.model_inputs()` gives the model's.

    input_ids, segment_ids: int32 (seq_len,) or (batch, seq_len); valid_length: int32 () or
    (batch,).
    """
    __slots__ = ()

    @property
    def token_types(self) -> np.ndarray:
        """The segment ids under the model's name."""
        return self.segment_ids

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | np.int32]:
        """(input_ids, token_types, valid_length): the order of the model call and batches."""
        return self.input_ids, self.segment_ids, self.valid_length


_new_features = tuple.__new__  # builds a SentenceFeatures without namedtuple's Python __new__


class TruncationCounter:
    """Counts texts cut to fit max_seq_length, so truncation is reported instead of hidden.

    The first cut also raises a UserWarning (once per counter); `report()` gives the totals.
    """

    def __init__(self, max_seq_length: int):
        self.max_seq_length = max_seq_length
        self.examples = 0
        self.truncated = 0
        self.tokens_dropped = 0
        self._warned = False

    def add(self, num_tokens: int, num_kept: int) -> None:
        """Record one example with num_tokens content tokens of which num_kept were kept."""
        self.examples += 1
        if num_kept < num_tokens:
            self.record_cuts(1, num_tokens - num_kept)

    def add_many(self, num_tokens: np.ndarray, num_kept: np.ndarray) -> None:
        """Record a batch: arrays (N,) of content tokens and kept tokens per example."""
        self.examples += len(num_tokens)
        cut = int(np.sum(num_kept < num_tokens))
        if cut:
            self.record_cuts(cut, int(np.sum(num_tokens - num_kept)))

    def record_cuts(self, count: int, tokens_dropped: int) -> None:
        """Count `count` truncated examples (already counted as examples)."""
        self.truncated += count
        self.tokens_dropped += tokens_dropped
        if not self._warned:
            self._warned = True
            warnings.warn(f'texts longer than max_seq_length={self.max_seq_length} are being '
                          f'truncated; '
                          'see .truncation.report() for the count',
                          stacklevel=4)

    def reset(self) -> None:
        """Forget the counts (e.g. between the train and dev sets); warn again on a new cut."""
        self.examples = self.truncated = self.tokens_dropped = 0
        self._warned = False

    def report(self) -> str:
        """One line: how many of the examples seen were truncated, and how many tokens dropped."""
        share = 100.0 * self.truncated / self.examples if self.examples else 0.0
        return (f'{self.truncated} of {self.examples} examples ({share:.2f}%) were truncated to '
                f'max_seq_length={self.max_seq_length} '
                f'({self.tokens_dropped} tokens dropped)')

    def __repr__(self):
        return f'TruncationCounter({self.report()})'


def truncate_pair_lengths(len_a: int, len_b: int, max_tokens: int) -> tuple[int, int]:
    """Google's longest-first rule: lengths (a, b) kept so a + b <= max_tokens.

    Equivalent to removing one token at a time from the longer text (from b on ties), and to
    sharing max_tokens equally (data.bert.glue.truncate_lengths_equal), which computes it.
    """
    return tuple(truncate_lengths_equal([len_a, len_b], max_tokens))


class BERTSentenceTransform:
    """Text or text pair -> SentenceFeatures(input_ids, valid_length, segment_ids) (GluonNLP order).

    Layout `[CLS] a [SEP] (b [SEP])`, segment ids 0 for `[CLS] a [SEP]` and 1 for `b [SEP]`.
    Texts that do not fit are truncated (pairs longest-first) and counted in `self.truncation`.
    pad=True pads to max_seq_length with the vocabulary's padding token (segment id 0).
    """

    def __init__(self, tokenizer: BERTTokenizer, max_seq_length: int,
                 vocab: VocabLike | None = None, pad: bool = True, pair: bool = True):
        if not isinstance(tokenizer, BERTTokenizer):
            raise TypeError(f'BERTSentenceTransform(tokenizer=...) needs a gluonbert '
                            f'BERTTokenizer, e.g. BERTTokenizer(BERTVocab.from_file(path)); got '
                            f'{type(tokenizer).__name__}')
        min_length = 3 if pair else 2
        if not isinstance(max_seq_length, numbers.Integral) or max_seq_length < min_length:
            raise ValueError('max_seq_length must be an integer >= {} to hold the special tokens '
                             'of a {}; got {!r}'.format(min_length, 'pair' if pair else 'text',
                                                        max_seq_length))
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.pad = pad
        self.pair = pair
        self.vocab = tokenizer.vocab if vocab is None else as_vocab(vocab)
        missing = [name for name in ('cls_token', 'sep_token', 'padding_token')
                   if getattr(self.vocab, name, None) is None]
        if missing:
            raise ValueError(f'BERTSentenceTransform needs a vocabulary with {", ".join(missing)}; '
                             f'use a BERTVocab (or pass vocab=BERTVocab(...))')
        # Another vocabulary re-maps the tokenizer's tokens; the same one lets ids pass through.
        self._remap = vocab is not None and vocab != tokenizer.vocab
        self.cls_id = self.vocab[self.vocab.cls_token]
        self.sep_id = self.vocab[self.vocab.sep_token]
        self.pad_id = self.vocab[self.vocab.padding_token]
        self.truncation = TruncationCounter(self.max_seq_length)
        self._lengths = [np.int32(n) for n in range(self.max_seq_length + 1)]  # immutable scalars

    def __call__(self, *line: str | Sequence[str]) -> SentenceFeatures:
        """(text_a,) or (text_a, text_b), as one tuple or as arguments (MXNet's
        Dataset.transform unpacks tuple samples); a bare str is accepted when pair=False."""
        if len(line) == 1:
            line = line[0]
        if self._remap:
            return self._assemble(*[self.vocab[self.tokenizer(text)]
                                    for text in self._check_line(line)])
        encode = self.tokenizer.encode_ids
        if self.pair:
            if type(line) is tuple and len(line) == 2 and type(line[0]) is str and \
                    type(line[1]) is str:
                return self._assemble(encode(line[0]), encode(line[1]))
            return self._assemble(*[encode(text) for text in self._check_line(line)])
        if type(line) is str:
            return self._assemble(encode(line))
        if type(line) is tuple and len(line) == 1 and type(line[0]) is str:
            return self._assemble(encode(line[0]))
        return self._assemble(encode(self._check_line(line)[0]))

    def _check_line(self, line):
        if isinstance(line, str):
            if self.pair:
                raise TypeError('this transform is for text pairs (pair=True): pass '
                                '(text_a, text_b), not a single str')
            return (line,)
        line = tuple(line)
        want = 2 if self.pair else 1
        if len(line) != want:
            raise ValueError('expected {} text{} ({}), got {} items: {!r}'.format(
                want, 's' if want == 2 else '', '(text_a, text_b)' if self.pair else '(text,)',
                len(line), line))
        for text in line:
            if not isinstance(text, str):
                raise TypeError(f'texts must be str; got {text!r}')
        return line

    def from_ids(self, ids_a: Iterable[int], ids_b: Iterable[int] | None = None
                 ) -> SentenceFeatures:
        """Already-tokenized ids (lists of int) -> SentenceFeatures, same rules as __call__."""
        if (ids_b is not None) != self.pair:
            raise ValueError('pair={} but {} id list{} given'.format(
                self.pair, 2 if ids_b is not None else 1, 's' if ids_b is not None else ''))
        return self._assemble(list(ids_a), None if ids_b is None else list(ids_b))

    def _assemble(self, ids_a, ids_b=None):
        """Truncate (counting it), add [CLS]/[SEP], pad; ids are lists of int."""
        counter = self.truncation
        counter.examples += 1
        if ids_b is None:
            budget = self.max_seq_length - 2
            if len(ids_a) > budget:
                counter.record_cuts(1, len(ids_a) - budget)
                ids_a = ids_a[:budget]
            tokens = [self.cls_id] + ids_a
            tokens.append(self.sep_id)
        else:
            keep_a, keep_b = truncate_pair_lengths(len(ids_a), len(ids_b),
                                                   self.max_seq_length - 3)
            if keep_a + keep_b < len(ids_a) + len(ids_b):
                counter.record_cuts(1, len(ids_a) + len(ids_b) - keep_a - keep_b)
                ids_a, ids_b = ids_a[:keep_a], ids_b[:keep_b]
            tokens = [self.cls_id] + ids_a
            tokens.append(self.sep_id)
            tokens += ids_b
            tokens.append(self.sep_id)
        length = len(tokens)
        size = self.max_seq_length if self.pad else length
        if self.pad_id == 0:
            input_ids = np.zeros(size, dtype=np.int32)
        else:
            input_ids = np.full(size, self.pad_id, dtype=np.int32)
        input_ids[:length] = tokens
        segment_ids = np.zeros(size, dtype=np.int32)
        if ids_b is not None:
            segment_ids[len(ids_a) + 2:length] = 1
        return _new_features(SentenceFeatures, (input_ids, self._lengths[length], segment_ids))

    def _empty(self, shape):
        if self.pad_id == 0:
            return np.zeros(shape, dtype=np.int32)
        return np.full(shape, self.pad_id, dtype=np.int32)

    def batch(self, lines: Iterable[str] | Iterable[Sequence[str]]) -> SentenceFeatures:
        """Many lines at once -> SentenceFeatures of arrays: ids and segments (N, L) int32,
        valid_length (N,) int32. L is max_seq_length with pad=True, else the longest sequence."""
        num_texts = 2 if self.pair else 1
        lines = lines if isinstance(lines, list) else list(lines)
        if not self.pair and all(type(line) is str for line in lines):
            texts = [lines]
        elif all(type(line) is tuple and len(line) == num_texts for line in lines):
            texts = [[line[k] for line in lines] for k in range(num_texts)]
        else:
            checked = [self._check_line(line) for line in lines]
            texts = [[line[k] for line in checked] for k in range(num_texts)]
        if self._remap:
            columns = [[self.vocab[self.tokenizer(text)] for text in column] for column in texts]
        else:
            columns = [self.tokenizer.encode_batch_ids(column) for column in texts]
        counts = [np.fromiter(map(len, column), dtype=np.int64, count=len(lines))
                  for column in columns]
        if self.pair:
            keep = list(_truncate_pair_arrays(counts[0], counts[1], self.max_seq_length - 3))
        else:
            keep = [np.minimum(counts[0], self.max_seq_length - 2)]
        self.truncation.add_many(sum(counts), sum(keep))
        for column, count, kept in zip(columns, counts, keep):
            for row in np.nonzero(kept < count)[0].tolist():
                column[row] = column[row][:kept[row]]
        lengths = (sum(keep) + num_texts + 1).astype(np.int32)
        width = self.max_seq_length if self.pad else int(lengths.max(initial=num_texts + 1))
        input_ids = self._empty((len(lines), width))
        segment_ids = np.zeros((len(lines), width), dtype=np.int32)
        rows = np.arange(len(lines))
        input_ids[:, 0] = self.cls_id
        _scatter(input_ids, columns[0], keep[0], np.ones_like(keep[0]))
        input_ids[rows, keep[0] + 1] = self.sep_id
        if self.pair:
            _scatter(input_ids, columns[1], keep[1], keep[0] + 2)
            input_ids[rows, lengths - 1] = self.sep_id
            segment_ids[np.arange(width) >= (keep[0] + 2)[:, None]] = 1
            segment_ids[np.arange(width) >= lengths[:, None]] = 0
        return SentenceFeatures(input_ids, lengths, segment_ids)


def _scatter(matrix, lists, counts, first_columns):
    """matrix[r, first_columns[r]:first_columns[r] + counts[r]] = lists[r] for every row r."""
    total = int(counts.sum())
    if total == 0:
        return
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=matrix.dtype, count=total)
    rows = np.repeat(np.arange(len(counts)), counts)
    row_starts = np.repeat(np.cumsum(counts) - counts, counts)
    matrix[rows, np.arange(total) - row_starts + np.repeat(first_columns, counts)] = flat


def _truncate_pair_arrays(len_a, len_b, max_tokens):
    """truncate_pair_lengths for arrays of lengths."""
    excess = len_a + len_b - max_tokens
    keep_a, keep_b = len_a.copy(), len_b.copy()
    over = excess > 0
    cut_a = over & (len_a - len_b >= excess)
    cut_b = over & ~cut_a & (len_b - len_a >= excess)
    even = over & ~cut_a & ~cut_b
    keep_a[cut_a] -= excess[cut_a]
    keep_b[cut_b] -= excess[cut_b]
    keep_a[even] = (max_tokens + 1) // 2
    keep_b[even] = max_tokens // 2
    return keep_a, keep_b


class ClassificationTransform:
    """(text[, text_b], label) -> (input_ids, token_types, valid_length, label) in model order.

    labels: the label set (its positions are the class ids); raw labels outside it are an error.
    With labels=None the label must already be a class id. has_label=False for unlabeled data:
    (text[, text_b]) -> (input_ids, token_types, valid_length).
    """

    def __init__(self, tokenizer: BERTTokenizer, max_seq_length: int,
                 labels: Iterable[Any] | None = None, pair: bool = False, pad: bool = False,
                 has_label: bool = True):
        self.sentence = BERTSentenceTransform(tokenizer, max_seq_length, pad=pad, pair=pair)
        self.labels = list(labels) if labels is not None else None
        self._label_ids = {label: i for i, label in enumerate(self.labels or [])}
        self.has_label = has_label

    @property
    def truncation(self) -> TruncationCounter:
        """The TruncationCounter of the underlying sentence transform."""
        return self.sentence.truncation

    def __call__(self, *sample: Any) -> tuple:
        """A sample tuple (or its fields as arguments, as MXNet's Dataset.transform passes them)
        -> (input_ids int32 (L,), token_types int32 (L,), valid_length int32 (), label)."""
        if len(sample) == 1 and not isinstance(sample[0], str):
            sample = sample[0]
        sample = tuple(sample)
        texts = sample[:-1] if self.has_label else sample
        features = self.sentence(texts).model_inputs()
        if not self.has_label:
            return features
        return features + (self.label_id(sample[-1]),)

    def label_id(self, label: Any) -> np.int32:
        """Raw label -> class id (np.int32); unknown labels raise a ValueError naming them."""
        if self.labels is None:
            if not isinstance(label, numbers.Integral):
                raise ValueError(f'label {label!r} is not a class id; pass labels=[...] to map raw '
                                 'labels')
            return np.int32(label)
        if label not in self._label_ids:
            raise ValueError(f'label {label!r} is not in the label set {self.labels}')
        return np.int32(self._label_ids[label])


class RegressionTransform(ClassificationTransform):
    """(text[, text_b], score) -> (input_ids, token_types, valid_length, score float32)."""

    def __init__(self, tokenizer: BERTTokenizer, max_seq_length: int, pair: bool = True,
                 pad: bool = False, has_label: bool = True):
        super().__init__(tokenizer, max_seq_length, labels=None, pair=pair, pad=pad,
                         has_label=has_label)

    def label_id(self, label: Any) -> np.float32:
        """Score -> np.float32; non-numeric scores raise a ValueError naming them."""
        try:
            return np.float32(label)
        except (TypeError, ValueError):
            raise ValueError(f'regression target {label!r} is not a number') from None
