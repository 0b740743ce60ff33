"""Samplers that group examples of similar length to cut padding (GluonNLP 0.10's API).

FixedBucketSampler is for training (length buckets, optional shuffling and per-device shards);
its bucket keys come from a BucketScheme (ConstWidthBucket, LinearWidthBucket, ExpWidthBucket).
SortedBucketSampler sorts within chunks (or the whole dataset) and has `unsort` to put
predictions back in dataset order; both yield lists of dataset indices (batch_sampler=...).
SortedSampler and SplitSampler yield single indices (sampler=...).

Lengths are ints (N,) or, for multi-field examples such as (src_len, tgt_len), tuples (N, K);
bucket keys then are K-tuples and an example goes to the bucket that fits all its fields with
the least total padding. Shuffles draw from `seed` (default: a seed drawn from numpy's global
RNG, so np.random.seed fixes the order as in GluonNLP).
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from mxnet.gluon.data import Sampler
from numpy.typing import ArrayLike

__all__ = ['BucketScheme', 'ConstWidthBucket', 'LinearWidthBucket', 'ExpWidthBucket',
           'FixedBucketSampler', 'SortedBucketSampler', 'SortedSampler', 'SplitSampler']


def _as_array(values, what):
    """Non-empty numbers (N,) or (N, K) -> numpy array, or a ValueError naming the problem."""
    with warnings.catch_warnings():
        warnings.simplefilter('error', np.VisibleDeprecationWarning)  # numpy < 1.24: ragged
        try:
            array = np.asarray(values)
        except (ValueError, np.VisibleDeprecationWarning):  # ragged tuples
            array = np.asarray(values, dtype=object)
    if array.dtype == object or array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f'{what} must be a non-empty sequence of numbers, or of equal-size '
                         f'tuples of numbers (one per field); got shape {array.shape}, '
                         f'dtype {array.dtype}')
    if array.dtype.kind not in 'biuf':
        raise ValueError(f'{what} must be numbers; got dtype {array.dtype}')
    return array


def _check_lengths(lengths) -> np.ndarray:
    """lengths -> int64 array (N,) or (N, K), every length >= 1."""
    lengths = _as_array(lengths, 'lengths')
    if lengths.dtype.kind not in 'iu':
        raise ValueError(f'lengths must be integers; got dtype {lengths.dtype}')
    lengths = lengths.astype(np.int64)
    rows = lengths.reshape(len(lengths), -1)
    if rows.min() < 1:
        bad = int(np.nonzero(rows.min(axis=1) < 1)[0][0])
        raise ValueError(f'every length must be >= 1; example {bad} has length '
                         f'{_key_repr(lengths[bad])}')
    return lengths


def _key_repr(row):
    """One length or key row -> int or tuple of ints (for messages and stats)."""
    return int(row) if np.ndim(row) == 0 else tuple(int(x) for x in row)


def _check_batch_size(batch_size):
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int; got {batch_size!r}')


def _make_rng(seed):
    # Without a seed, draw one from numpy's global RNG so np.random.seed still fixes the order.
    return np.random.RandomState(np.random.randint(2 ** 31) if seed is None else seed)


def _stable_order(keys, reverse):
    """Indices sorting keys (n,) or (n, K) (tuples compare field by field); equal keys keep
    their order, also when reverse=True (as Python's sorted does)."""
    keys = keys.reshape(len(keys), -1)
    keys = keys.astype(np.float64 if keys.dtype.kind == 'f' else np.int64)
    if reverse:
        keys = -keys
    return np.lexsort(keys.T[::-1])


class BucketScheme:
    """Base class: bucket keys from the longest and shortest lengths and a bucket count."""

    def __call__(self, max_lengths: ArrayLike, min_lengths: ArrayLike, num_buckets: int
                 ) -> list[int] | list[tuple[int, ...]]:
        """-> num_buckets keys: ints for int lengths, K-tuples for K-field lengths."""
        if np.ndim(max_lengths) == 0:
            return [int(k) for k in self.field_keys(int(max_lengths), int(min_lengths),
                                                    num_buckets)]
        per_field = [self.field_keys(int(hi), int(lo), num_buckets)
                     for hi, lo in zip(max_lengths, min_lengths)]
        return [tuple(int(k) for k in key) for key in zip(*per_field)]

    def field_keys(self, max_len: int, min_len: int, num_buckets: int) -> list:
        """The keys of one length field."""
        raise NotImplementedError


class ConstWidthBucket(BucketScheme):
    """Buckets of equal width, the widest key at the longest length (GluonNLP's default)."""

    def field_keys(self, max_len: int, min_len: int, num_buckets: int) -> list:
        """max_len, max_len - w, ... (never below min_len), w = (max - min + 1) // num_buckets."""
        width = max((1 + max_len - min_len) // num_buckets, 1)
        return [max(max_len - i * width, min_len) for i in range(num_buckets)]


class LinearWidthBucket(BucketScheme):
    """Buckets whose widths grow linearly: w_i = alpha * i + 1."""

    def field_keys(self, max_len: int, min_len: int, num_buckets: int) -> list:
        """min_len + sum of the first i + 1 widths; the last key is at least max_len."""
        alpha = 2 * float(max_len - min_len - num_buckets) / (num_buckets * (num_buckets + 1))
        keys = [int(round(min_len + alpha * ((i + 1) * (i + 2)) / 2 + i + 1))
                for i in range(num_buckets)]
        keys[-1] = max(keys[-1], max_len)
        return keys


class ExpWidthBucket(BucketScheme):
    """Buckets whose widths grow geometrically: w_i = bucket_len_step * w_(i-1)."""

    def __init__(self, bucket_len_step: float = 1.1):
        if not bucket_len_step > 0 or bucket_len_step == 1:
            raise ValueError(f'bucket_len_step must be > 0 and != 1 (the factor from one bucket '
                             f'width to the next; 1 is ConstWidthBucket); got {bucket_len_step!r}')
        self.bucket_len_step = bucket_len_step

    def field_keys(self, max_len: int, min_len: int, num_buckets: int) -> list:
        """min_len + the geometric sum of the first i + 1 widths; the last key >= max_len."""
        step = self.bucket_len_step
        first_width = (max_len - min_len) * (step - 1) / (math.pow(step, num_buckets) - 1)
        keys = [int(round(min_len + first_width * (math.pow(step, i + 1) - 1) / (step - 1)))
                for i in range(num_buckets)]
        keys[-1] = max(keys[-1], max_len)
        return keys


def _check_bucket_keys(bucket_keys, num_fields):
    """User keys -> sorted unique ints (num_fields 0) or K-tuples of ints."""
    if len(bucket_keys) == 0:
        raise ValueError('bucket_keys is empty; give at least one key >= the longest length')
    keys = []
    for key in bucket_keys:
        if num_fields == 0:
            if not isinstance(key, numbers.Integral):
                raise ValueError(f'bucket_keys must be ints for int lengths; got {key!r} (tuple '
                                 f'keys need tuple lengths)')
            keys.append(int(key))
        else:
            if (not isinstance(key, (tuple, list, np.ndarray)) or len(key) != num_fields
                    or not all(isinstance(k, numbers.Integral) for k in key)):
                raise ValueError(f'bucket_keys must be {num_fields}-tuples of ints for lengths '
                                 f'with {num_fields} fields; got {key!r}')
            keys.append(tuple(int(k) for k in key))
    return sorted(set(keys))


def _assign_buckets(lengths, keys):
    """(N,) or (N, K) lengths, sorted keys -> (N,) index of the bucket with the least padding
    among those that fit (>= the length in every field)."""
    if lengths.ndim == 1:
        bucket_of = np.searchsorted(np.asarray(keys), lengths, side='left')
        if bucket_of.max() == len(keys):
            bad = int(np.argmax(bucket_of == len(keys)))
            raise ValueError(f'example {bad} has length {int(lengths[bad])}, longer than the '
                             f'largest bucket key {keys[-1]}; add a larger key')
        return bucket_of
    key_array = np.asarray(keys, dtype=np.int64)[None]  # (1, B, K)
    bucket_of = np.empty(len(lengths), dtype=np.int64)
    chunk = max(1, 2 ** 22 // key_array.size)  # bounds the (chunk, B, K) temporaries
    for begin in range(0, len(lengths), chunk):
        diff = key_array - lengths[begin:begin + chunk, None, :]
        padding = np.where((diff >= 0).all(axis=2), diff.sum(axis=2), np.iinfo(np.int64).max)
        best = padding.argmin(axis=1)
        unfit = np.nonzero(padding[np.arange(len(best)), best] == np.iinfo(np.int64).max)[0]
        if len(unfit):
            bad = begin + int(unfit[0])
            raise ValueError(f'example {bad} has lengths {_key_repr(lengths[bad])}, which fit '
                             f'no bucket key (a key must be >= the lengths in every field); '
                             f'keys: {keys}')
        bucket_of[begin:begin + chunk] = best
    return bucket_of


class FixedBucketSampler(Sampler):
    """Assign each example to the smallest length bucket that holds it; batch within buckets.

    lengths: (N,) ints, e.g. valid_length, or (N, K) tuples such as (src_len, tgt_len).
    bucket_keys: the buckets' upper bounds (ints, or K-tuples); default: `num_buckets` keys from
    `bucket_scheme` (ConstWidthBucket). Empty buckets are dropped (with a warning).
    ratio > 0 scales up the batch size of shorter buckets:
    B_i = max(int(max_key / key_i * ratio * B), B), tuple keys compared by their sum.
    use_average_length=True: batch_size counts tokens, B_i = max(int(B / (mean_i + std_i)), 1).
    shuffle: new sample and batch order every epoch (seeded by `seed`).
    num_shards > 0: each item is a list of num_shards batches (one per device); an incomplete
    last group is completed with the epoch's first batches, so every example is seen each epoch.
    """

    def __init__(self, lengths: Sequence[int] | Sequence[Sequence[int]] | np.ndarray,
                 batch_size: int, num_buckets: int | None = 10,
                 bucket_keys: Sequence[int] | Sequence[Sequence[int]] | None = None,
                 ratio: float = 0, shuffle: bool = False, use_average_length: bool = False,
                 num_shards: int = 0, bucket_scheme: BucketScheme = ConstWidthBucket(),
                 seed: int | None = None):
        self._lengths = _check_lengths(lengths)
        _check_batch_size(batch_size)
        if ratio < 0:
            raise ValueError(f'ratio must be >= 0; got {ratio}')
        if not isinstance(num_shards, numbers.Integral) or num_shards < 0:
            raise ValueError(f'num_shards must be an int >= 0; got {num_shards!r}')
        self.batch_size, self.ratio, self.shuffle, self.num_shards = (
            batch_size, ratio, shuffle, num_shards)
        self.bucket_scheme = bucket_scheme
        self._rng = _make_rng(seed) if shuffle else None
        num_fields = 0 if self._lengths.ndim == 1 else self._lengths.shape[1]
        if bucket_keys is None:
            if not isinstance(num_buckets, numbers.Integral) or num_buckets < 1:
                raise ValueError(f'num_buckets must be a positive int when bucket_keys is None; '
                                 f'got {num_buckets!r}')
            bucket_keys = bucket_scheme(self._lengths.max(axis=0), self._lengths.min(axis=0),
                                        num_buckets)
        elif num_buckets is not None:
            warnings.warn(f'num_buckets will not be used if bucket_keys is not None. '
                          f'bucket_keys={bucket_keys}, num_buckets={num_buckets}', stacklevel=2)
        keys = _check_bucket_keys(bucket_keys, num_fields)
        bucket_of = _assign_buckets(self._lengths, keys)
        counts = np.bincount(bucket_of, minlength=len(keys))
        unused = [key for key, count in zip(keys, counts) if count == 0]
        if unused:
            warnings.warn(f'Some buckets are empty and will be removed. '
                          f'Unused bucket keys={unused}', stacklevel=2)
        used = np.nonzero(counts)[0]
        self.bucket_keys = [keys[b] for b in used]
        self._buckets = [np.nonzero(bucket_of == b)[0] for b in used]
        if use_average_length:
            if ratio > 0:
                warnings.warn(f'ratio={ratio:f} is ignored when use_average_length is True',
                              stacklevel=2)
            self.bucket_batch_sizes = [
                max(int(batch_size / (self._lengths[ids].mean() + self._lengths[ids].std())), 1)
                for ids in self._buckets]
        else:
            sizes = [key if num_fields == 0 else sum(key) for key in self.bucket_keys]
            top = max(sizes)
            self.bucket_batch_sizes = [max(int(top / float(size) * ratio * batch_size),
                                           batch_size) for size in sizes]
        # Batches as (bucket, start); longest buckets first, so an unshuffled epoch fails fast
        # on memory.
        self._batch_infos = [(b, start) for b in reversed(range(len(self._buckets)))
                             for start in range(0, len(self._buckets[b]),
                                                self.bucket_batch_sizes[b])]

    def __iter__(self):
        buckets = self._buckets
        order = list(range(len(self._batch_infos)))
        if self.shuffle:
            buckets = [self._rng.permutation(ids) for ids in buckets]
            self._rng.shuffle(order)
        batches = []
        for i in order:
            b, start = self._batch_infos[i]
            batches.append(buckets[b][start:start + self.bucket_batch_sizes[b]].tolist())
        if self.num_shards == 0:
            yield from batches
            return
        for first in range(0, len(batches), self.num_shards):
            group = batches[first:first + self.num_shards]
            fill = 0
            while len(group) < self.num_shards:
                group.append(batches[fill % len(batches)])
                fill += 1
            yield group

    def __len__(self):
        if self.num_shards:
            return int(math.ceil(len(self._batch_infos) / self.num_shards))
        return len(self._batch_infos)

    def stats(self) -> str:
        """Bucket keys, counts and batch sizes as a short multi-line string."""
        return (f'{type(self).__name__}:\n'
                f'  sample_num={len(self._lengths)}, batch_num={len(self._batch_infos)}\n'
                f'  key={self.bucket_keys}\n'
                f'  cnt={[len(ids) for ids in self._buckets]}\n'
                f'  batch_size={self.bucket_batch_sizes}')


class SortedBucketSampler(Sampler):
    """Batches of examples sorted by key (largest first by default), sorted within chunks.

    sort_keys: (N,) numbers or (N, K) tuples (compared field by field), e.g. lengths.
    mult=m sorts within chunks of m * batch_size examples (GluonNLP's default m=100);
    mult=None sorts the whole dataset (best for inference). shuffle=True randomizes chunk
    contents and batch order. `unsort(outputs)` reorders outputs concatenated in sampler order
    back to dataset order.
    """

    def __init__(self, sort_keys: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
                 batch_size: int, mult: float | None = 100, reverse: bool = True,
                 shuffle: bool = False, seed: int | None = None):
        self._keys = _as_array(sort_keys, 'sort_keys')
        _check_batch_size(batch_size)
        if mult is not None and not mult >= 1:
            raise ValueError(f'mult must be >= 1 or None; got {mult}')
        if shuffle and mult is None:
            raise ValueError('shuffle=True needs mult (chunks to sort within); a fully sorted '
                             'order cannot be shuffled')
        self.batch_size, self.mult, self.reverse, self.shuffle = batch_size, mult, reverse, shuffle
        self._rng = _make_rng(seed) if shuffle else None
        self._last_order = None

    def _chunk_size(self):
        return len(self._keys) if self.mult is None else int(self.mult * self.batch_size)

    def __iter__(self):
        n = len(self._keys)
        ids = self._rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = self._chunk_size()
        batches = []
        for begin in range(0, n, chunk):
            chunk_ids = ids[begin:begin + chunk]
            ordered = chunk_ids[_stable_order(self._keys[chunk_ids], self.reverse)]
            chunk_batches = [ordered[i:i + self.batch_size].tolist()
                             for i in range(0, len(ordered), self.batch_size)]
            if self.shuffle:
                self._rng.shuffle(chunk_batches)
            batches.extend(chunk_batches)
        self._last_order = np.array([i for batch in batches for i in batch], dtype=np.int64)
        yield from batches

    def __len__(self):
        chunk = self._chunk_size()
        full, rest = divmod(len(self._keys), chunk)
        return full * int(math.ceil(chunk / self.batch_size)) + int(math.ceil(rest /
                                                                              self.batch_size))

    def unsort(self, outputs: np.ndarray | Sequence) -> np.ndarray:
        """(N, ...) outputs in the order of the last iteration -> the same rows in dataset order."""
        if self._last_order is None:
            raise RuntimeError('unsort needs a finished iteration over the sampler first')
        outputs = np.asarray(outputs)
        if len(outputs) != len(self._last_order):
            raise ValueError(f'got {len(outputs)} outputs for {len(self._last_order)} examples')
        restored = np.empty_like(outputs)
        restored[self._last_order] = outputs
        return restored


class SortedSampler(Sampler):
    """Every index once, sorted by its key (largest first by default; ties keep dataset order).

    sort_keys: (N,) numbers or (N, K) tuples compared field by field.
    """

    def __init__(self, sort_keys: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
                 reverse: bool = True):
        self._order = _stable_order(_as_array(sort_keys, 'sort_keys'), reverse).tolist()

    def __iter__(self):
        return iter(self._order)

    def __len__(self):
        return len(self._order)


class SplitSampler(Sampler):
    """The indices of part `part_index` of `num_parts` contiguous parts of range(length),
    shuffled every epoch, `repeat` times over (one part per worker).

    even_size=True gives every part ceil(length / num_parts) indices, topping up short parts
    with distinct random indices from the whole dataset.
    """

    def __init__(self, length: int, num_parts: int = 1, part_index: int = 0,
                 even_size: bool = False, repeat: int = 1, shuffle: bool = True,
                 seed: int | None = None):
        for name, value, low in (('length', length, 1), ('num_parts', num_parts, 1),
                                 ('repeat', repeat, 1)):
            if not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f'{name} must be an int >= {low}; got {value!r}')
        if length < num_parts:
            raise ValueError(f'length ({length}) must be >= num_parts ({num_parts}): every '
                             f'part needs an example')
        if not isinstance(part_index, numbers.Integral) or not 0 <= part_index < num_parts:
            raise ValueError(f'part_index must be an int in [0, num_parts={num_parts}); got '
                             f'{part_index!r}')
        self.length, self.num_parts, self.part_index = length, num_parts, part_index
        self.even_size, self.repeat, self.shuffle = even_size, repeat, shuffle
        if even_size:
            self._part_len = -(-length // num_parts)
            self._start = min(self._part_len * part_index, length)
            self._end = min(self._start + self._part_len, length)
        else:
            base, extra = divmod(length, num_parts)
            self._start = base * part_index + min(part_index, extra)
            self._end = self._start + base + (part_index < extra)
            self._part_len = self._end - self._start
        self._rng = _make_rng(seed)

    def __iter__(self):
        indices = []
        for _ in range(self.repeat):
            part = np.arange(self._start, self._end)
            missing = self._part_len - len(part)
            if missing:
                part = np.concatenate([part, self._rng.choice(self.length, missing,
                                                              replace=False)])
            if self.shuffle:
                self._rng.shuffle(part)
            indices.extend(part.tolist())
        return iter(indices)

    def __len__(self):
        return self._part_len * self.repeat
