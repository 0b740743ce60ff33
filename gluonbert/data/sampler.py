"""Batch samplers that group examples of similar length to cut padding.

FixedBucketSampler is for training (length buckets, optional shuffling and per-device shards);
SortedBucketSampler is for inference (sorted by length, deterministic, with `unsort` to put
predictions back in dataset order). Both yield lists of dataset indices (batch_sampler=...).
"""
import math
import numbers

import numpy as np


def _check_lengths(lengths):
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError('lengths must be a non-empty 1-D sequence of ints; got shape {}'.format(
            lengths.shape))
    if lengths.dtype.kind not in 'iu':
        raise ValueError('lengths must be integers; got dtype {}'.format(lengths.dtype))
    if lengths.min() < 1:
        raise ValueError('every length must be >= 1; example {} has length {}'.format(
            int(lengths.argmin()), int(lengths.min())))
    return lengths.astype(np.int64)


def _check_batch_size(batch_size):
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError('batch_size must be a positive int; got {!r}'.format(batch_size))


def _make_rng(seed):
    # Without a seed, draw one from numpy's global RNG so np.random.seed still fixes the order.
    return np.random.RandomState(np.random.randint(2 ** 31) if seed is None else seed)


class FixedBucketSampler:
    """Assign each example to the smallest length bucket that holds it; batch within buckets.

    lengths: (N,) ints, e.g. valid_length. bucket_keys: the buckets' upper bounds (default:
    num_buckets equal-width buckets up to the longest example). ratio > 0 scales up the batch
    size of shorter buckets: B_i = max(int(ratio * B * max_key / key_i), B).
    use_average_length=True: batch_size counts tokens, B_i = max(int(B / (mean_i + std_i)), 1).
    shuffle: new sample and batch order every epoch (seeded by `seed`).
    num_shards > 0: each item is a list of num_shards batches (one per device); an incomplete
    last group is completed with the epoch's first batches, so every example is seen each epoch.
    """

    def __init__(self, lengths, batch_size, num_buckets=10, bucket_keys=None, ratio=0,
                 shuffle=False, use_average_length=False, num_shards=0, seed=None):
        self._lengths = _check_lengths(lengths)
        _check_batch_size(batch_size)
        if ratio < 0:
            raise ValueError('ratio must be >= 0; got {}'.format(ratio))
        if not isinstance(num_shards, numbers.Integral) or num_shards < 0:
            raise ValueError('num_shards must be an int >= 0; got {!r}'.format(num_shards))
        self.batch_size, self.ratio, self.shuffle, self.num_shards = (
            batch_size, ratio, shuffle, num_shards)
        self._rng = _make_rng(seed) if shuffle else None
        if bucket_keys is None:
            if not isinstance(num_buckets, numbers.Integral) or num_buckets < 1:
                raise ValueError('num_buckets must be a positive int; got {!r}'.format(
                    num_buckets))
            bucket_keys = _equal_width_keys(int(self._lengths.min()),
                                            int(self._lengths.max()), num_buckets)
        keys = np.array(sorted(set(int(k) for k in bucket_keys)), dtype=np.int64)
        if self._lengths.max() > keys[-1]:
            longest = int(self._lengths.argmax())
            raise ValueError('example {} has length {}, longer than the largest bucket key {}'
                             .format(longest, int(self._lengths[longest]), int(keys[-1])))
        bucket_of = np.searchsorted(keys, self._lengths, side='left')
        used = np.unique(bucket_of)
        self.bucket_keys = keys[used].tolist()
        self._buckets = [np.nonzero(bucket_of == b)[0] for b in used]
        if use_average_length:
            self.bucket_batch_sizes = [
                max(int(batch_size / (self._lengths[ids].mean() + self._lengths[ids].std())), 1)
                for ids in self._buckets]
        else:
            top = max(self.bucket_keys)
            self.bucket_batch_sizes = [max(int(ratio * batch_size * top / key), batch_size)
                                       for key in self.bucket_keys]
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

    def stats(self):
        """Bucket keys, counts and batch sizes as a short multi-line string."""
        return ('FixedBucketSampler:\n  sample_num={}, batch_num={}\n  key={}\n  cnt={}\n'
                '  batch_size={}'.format(len(self._lengths), len(self._batch_infos),
                                         self.bucket_keys, [len(ids) for ids in self._buckets],
                                         self.bucket_batch_sizes))


def _equal_width_keys(min_len, max_len, num_buckets):
    """num_buckets upper bounds of equal width covering [min_len, max_len]; the last is max_len."""
    width = max(int(math.ceil((max_len - min_len + 1) / num_buckets)), 1)
    return sorted({min(max_len, min_len - 1 + width * (i + 1)) for i in range(num_buckets)})


class SortedBucketSampler:
    """Batches of examples sorted by length (longest first by default) for fast inference.

    mult=None sorts the whole dataset; mult=m sorts within chunks of m * batch_size
    (shuffle=True then randomizes chunk contents and batch order: a training variant).
    `unsort(outputs)` reorders outputs concatenated in sampler order back to dataset order.
    """

    def __init__(self, lengths, batch_size, mult=None, reverse=True, shuffle=False, seed=None):
        self._lengths = _check_lengths(lengths)
        _check_batch_size(batch_size)
        if mult is not None and mult < 1:
            raise ValueError('mult must be >= 1 or None; got {}'.format(mult))
        if shuffle and mult is None:
            raise ValueError('shuffle=True needs mult (chunks to sort within); a fully sorted '
                             'order cannot be shuffled')
        self.batch_size, self.mult, self.reverse, self.shuffle = batch_size, mult, reverse, shuffle
        self._rng = _make_rng(seed) if shuffle else None
        self._last_order = None

    def _sorted(self, ids):
        keys = -self._lengths[ids] if self.reverse else self._lengths[ids]
        return ids[np.argsort(keys, kind='stable')]

    def __iter__(self):
        n = len(self._lengths)
        ids = self._rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = n if self.mult is None else int(self.mult * self.batch_size)
        batches = []
        for begin in range(0, n, chunk):
            ordered = self._sorted(ids[begin:begin + chunk])
            chunk_batches = [ordered[i:i + self.batch_size].tolist()
                             for i in range(0, len(ordered), self.batch_size)]
            if self.shuffle:
                self._rng.shuffle(chunk_batches)
            batches.extend(chunk_batches)
        self._last_order = np.array([i for batch in batches for i in batch], dtype=np.int64)
        yield from batches

    def __len__(self):
        if self.mult is None:
            return int(math.ceil(len(self._lengths) / self.batch_size))
        chunk = int(self.mult * self.batch_size)
        full, rest = divmod(len(self._lengths), chunk)
        return full * int(math.ceil(chunk / self.batch_size)) + int(math.ceil(rest /
                                                                              self.batch_size))

    def unsort(self, outputs):
        """(N, ...) outputs in the order of the last iteration -> the same rows in dataset order."""
        if self._last_order is None:
            raise RuntimeError('unsort needs a finished iteration over the sampler first')
        outputs = np.asarray(outputs)
        if len(outputs) != len(self._last_order):
            raise ValueError('got {} outputs for {} examples'.format(len(outputs),
                                                                     len(self._last_order)))
        restored = np.empty_like(outputs)
        restored[self._last_order] = outputs
        return restored
