"""Samplers: every example once per epoch, buckets respected, GluonNLP parity, seeded shuffles."""
import os
import warnings

import gluonnlp
import numpy as np
import pytest

from gluonbert.data import (SST2, BERTSentenceTransform, BERTTokenizer, BERTVocab,
                            FixedBucketSampler, SortedBucketSampler, bundled_vocab_path)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def sst2_lengths():
    """valid_length of the committed SST-2 training slice (real lengths, 8,000 sentences)."""
    tokenizer = BERTTokenizer(BERTVocab.from_file(bundled_vocab_path()))
    texts = [(text,) for text, _ in SST2.read(os.path.join(REPO, 'data', 'sst2', 'train.tsv'))]
    return BERTSentenceTransform(tokenizer, 128, pair=False, pad=False).batch(texts).valid_length


def flat(batches):
    return sorted(i for batch in batches for i in batch)


def test_every_example_once_and_batches_within_their_bucket(sst2_lengths):
    sampler = FixedBucketSampler(sst2_lengths, batch_size=32, num_buckets=6, shuffle=True,
                                 seed=1)
    batches = list(sampler)
    assert flat(batches) == list(range(len(sst2_lengths)))
    assert len(batches) == len(sampler)
    keys = [0] + sampler.bucket_keys
    for batch in batches:
        lengths = sst2_lengths[batch]
        bucket = next(k for k in sampler.bucket_keys if lengths.max() <= k)
        assert lengths.min() > keys[keys.index(bucket) - 1]  # all from the same bucket
        assert len(batch) <= 32


def test_buckets_cut_padding_on_real_lengths(sst2_lengths):
    def padding(batches):
        return sum(len(b) * sst2_lengths[b].max() - sst2_lengths[b].sum() for b in batches)
    bucketed = padding(list(FixedBucketSampler(sst2_lengths, 32, num_buckets=10, seed=0,
                                               shuffle=True)))
    order = np.random.RandomState(0).permutation(len(sst2_lengths))
    plain = padding([order[i:i + 32] for i in range(0, len(order), 32)])
    assert bucketed < 0.3 * plain


def test_same_batches_as_gluonnlp_with_the_same_bucket_keys(sst2_lengths):
    keys = [8, 16, 24, 32, 48, 64]
    ours = FixedBucketSampler(sst2_lengths, 16, num_buckets=None, bucket_keys=keys, ratio=0.5)
    theirs = gluonnlp.data.FixedBucketSampler(sst2_lengths, 16, num_buckets=None,
                                              bucket_keys=keys, ratio=0.5)
    assert [list(b) for b in ours] == [list(b) for b in theirs]
    assert ours.bucket_batch_sizes == theirs._bucket_batch_sizes
    assert 'key=[8, 16, 24, 32, 48, 64]' in ours.stats()


def test_ratio_scales_small_buckets():
    sampler = FixedBucketSampler([10, 20, 40] * 10, 4, num_buckets=None, bucket_keys=[10, 20, 40],
                                 ratio=1)
    assert sampler.bucket_batch_sizes == [16, 8, 4]


def test_use_average_length_counts_tokens():
    sampler = FixedBucketSampler([10] * 50 + [50] * 50, 200, num_buckets=None,
                                 bucket_keys=[10, 50], use_average_length=True)
    assert sampler.bucket_batch_sizes == [20, 4]


def test_shuffle_is_seeded_and_changes_each_epoch(sst2_lengths):
    first = FixedBucketSampler(sst2_lengths, 32, shuffle=True, seed=3)
    second = FixedBucketSampler(sst2_lengths, 32, shuffle=True, seed=3)
    epoch1, epoch2 = list(first), list(first)
    assert epoch1 == list(second)
    assert epoch1 != epoch2 and flat(epoch1) == flat(epoch2)
    np.random.seed(5)
    a = list(FixedBucketSampler(sst2_lengths, 32, shuffle=True))
    np.random.seed(5)
    assert a == list(FixedBucketSampler(sst2_lengths, 32, shuffle=True))


def test_shards_give_each_device_a_batch_and_cover_everything():
    lengths = np.arange(1, 51)
    sampler = FixedBucketSampler(lengths, 4, num_buckets=5, num_shards=3, shuffle=True, seed=0)
    groups = list(sampler)
    assert len(groups) == len(sampler) == 5  # 13 batches -> 5 groups of 3
    assert all(len(group) == 3 and all(group) for group in groups)
    seen = {i for group in groups for batch in group for i in batch}
    assert seen == set(range(50))
    tiny = list(FixedBucketSampler([3, 4], 8, num_shards=4))
    assert len(tiny) == 1 and len(tiny[0]) == 4


def test_bad_lengths_are_errors():
    with pytest.raises(ValueError, match='example 2 has length 0'):
        FixedBucketSampler([3, 4, 0], 2)
    with pytest.raises(ValueError, match='example 1 has length 9, longer than the largest '
                                         'bucket key 5'):
        FixedBucketSampler([3, 9], 2, num_buckets=None, bucket_keys=[5])
    with pytest.raises(ValueError, match='batch_size must be a positive int'):
        SortedBucketSampler([3], 0)


def test_sorted_sampler_for_inference_and_unsort(sst2_lengths):
    sampler = SortedBucketSampler(sst2_lengths, 64, mult=None)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 125
    order = [i for b in batches for i in b]
    assert sorted(order) == list(range(len(sst2_lengths)))
    assert np.all(np.diff(sst2_lengths[order]) <= 0)  # longest first, globally
    outputs = np.asarray(order) * 10  # "predictions" computed in sampler order
    np.testing.assert_array_equal(sampler.unsort(outputs), np.arange(len(order)) * 10)
    assert list(sampler) == batches  # deterministic


def test_sorted_sampler_chunks_match_gluonnlp(sst2_lengths):
    ours = SortedBucketSampler(sst2_lengths, 16, mult=10)
    theirs = gluonnlp.data.SortedBucketSampler(sst2_lengths, 16, mult=10)
    assert [[int(i) for i in b] for b in ours] == [[int(i) for i in b] for b in theirs]
    assert len(ours) == len(theirs)
    shuffled = SortedBucketSampler(sst2_lengths, 16, mult=10, shuffle=True, seed=0)
    assert flat(shuffled) == list(range(len(sst2_lengths)))
