"""Samplers: every example once per epoch, buckets respected, GluonNLP parity, seeded shuffles."""
import os
import warnings

import gluonnlp
import numpy as np
import pytest

from gluonbert.data import (SST2, BERTSentenceTransform, BERTTokenizer, BERTVocab,
                            ConstWidthBucket, ExpWidthBucket, FixedBucketSampler,
                            LinearWidthBucket, SortedBucketSampler, SortedSampler, SplitSampler,
                            bundled_vocab_path)
from gluonbert.data import sampler as sampler_module

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
    assert len(groups) == len(sampler) == 5  # 5 buckets of 10: 15 batches, 5 groups
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


@pytest.mark.parametrize('scheme, int_keys, pair_keys', [
    (ConstWidthBucket(), [100, 82, 64, 46, 28], [(50, 20), (34, 15), (18, 10)]),
    (LinearWidthBucket(), [17, 29, 47, 71, 100], [(10, 7), (26, 12), (50, 20)]),
    (ExpWidthBucket(), [25, 41, 59, 78, 100], [(16, 9), (32, 14), (50, 20)]),
])
def test_bucket_schemes_give_gluonnlps_keys(scheme, int_keys, pair_keys):
    assert scheme(100, 10, 5) == int_keys
    assert scheme(np.array([50, 20]), np.array([1, 4]), 3) == pair_keys
    theirs = getattr(gluonnlp.data, type(scheme).__name__)()
    assert theirs(100, 10, 5) == int_keys
    assert theirs([50, 20], [1, 4], 3) == pair_keys


@pytest.mark.parametrize('scheme', ['ConstWidthBucket', 'LinearWidthBucket', 'ExpWidthBucket'])
def test_generated_buckets_batch_like_gluonnlp(sst2_lengths, scheme):
    ours = FixedBucketSampler(sst2_lengths, 32, num_buckets=8, ratio=0.5,
                              bucket_scheme=getattr(sampler_module, scheme)())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # both warn alike about empty buckets, if any
        theirs = gluonnlp.data.FixedBucketSampler(sst2_lengths, 32, num_buckets=8, ratio=0.5,
                                                  bucket_scheme=getattr(gluonnlp.data, scheme)())
    assert ours.bucket_keys == theirs._bucket_keys
    assert [list(b) for b in ours] == [list(b) for b in theirs]
    assert len(ours) == len(theirs)


PAIRS = [(3, 9), (4, 2), (8, 8), (2, 2)]
PAIR_KEYS = [(10, 10), (4, 4), (4, 10)]


def test_pair_lengths_go_to_the_fitting_bucket_with_least_padding():
    sampler = FixedBucketSampler(PAIRS, 2, num_buckets=None, bucket_keys=PAIR_KEYS)
    # (3, 9) fits (4, 10) and (10, 10): (4, 10) pads 2 tokens; (2, 2) and (4, 2) share (4, 4)
    assert list(sampler) == [[2], [0], [1, 3]]
    assert sampler.bucket_keys == [(4, 4), (4, 10), (10, 10)]
    assert sampler.stats() == ('FixedBucketSampler:\n  sample_num=4, batch_num=3\n'
                               '  key=[(4, 4), (4, 10), (10, 10)]\n  cnt=[2, 1, 1]\n'
                               '  batch_size=[2, 2, 2]')
    theirs = gluonnlp.data.FixedBucketSampler(PAIRS, 2, num_buckets=None, bucket_keys=PAIR_KEYS)
    assert [list(b) for b in theirs] == [[2], [0], [1, 3]]


def test_pair_ratio_scales_by_the_sum_of_the_key():
    sampler = FixedBucketSampler(PAIRS, 1, num_buckets=None, bucket_keys=PAIR_KEYS, ratio=1)
    assert sampler.bucket_batch_sizes == [2, 1, 1]  # int(20 / 8), int(20 / 14), 20 / 20


def test_pair_lengths_with_generated_keys_match_gluonnlp_and_cover_everything():
    pairs = [tuple(p) for p in np.random.RandomState(0).randint(1, 60, size=(300, 2))]
    sampler = FixedBucketSampler(pairs, 16, num_buckets=4)
    assert sampler.bucket_keys == [(17, 17), (31, 31), (45, 45), (59, 59)]  # width 58 // 4
    assert 'cnt=[22, 58, 90, 130]' in sampler.stats()
    theirs = gluonnlp.data.FixedBucketSampler(pairs, 16, num_buckets=4)
    assert [list(b) for b in sampler] == [list(b) for b in theirs]
    shuffled = list(FixedBucketSampler(pairs, 16, num_buckets=4, shuffle=True, seed=0))
    assert flat(shuffled) == list(range(300)) and len(shuffled) == len(sampler) == 21
    assert shuffled == list(FixedBucketSampler(pairs, 16, num_buckets=4, shuffle=True, seed=0))


def test_shard_groups_are_exact_and_the_last_is_completed_from_the_start():
    sampler = FixedBucketSampler(list(range(1, 11)), 2, num_buckets=None, bucket_keys=[10],
                                 num_shards=2)
    assert list(sampler) == [[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9], [0, 1]]]
    assert len(sampler) == 3


def test_gluonnlps_warnings():
    with pytest.warns(UserWarning, match=r'num_buckets will not be used if bucket_keys is not '
                                         r'None. bucket_keys=\[5, 9\], num_buckets=10'):
        FixedBucketSampler([3, 9], 2, bucket_keys=[5, 9])
    with pytest.warns(UserWarning, match=r'Some buckets are empty and will be removed. '
                                         r'Unused bucket keys=\[\(1, 1\), \(5, 5\)\]'):
        FixedBucketSampler(PAIRS + [(9, 3)], 2, num_buckets=None,
                           bucket_keys=PAIR_KEYS + [(1, 1), (5, 5)])
    with pytest.warns(UserWarning, match=r'ratio=0.500000 is ignored when use_average_length '
                                         r'is True'):
        FixedBucketSampler([3, 9], 2, num_buckets=1, ratio=0.5, use_average_length=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        FixedBucketSampler([3, 9], 2, num_buckets=None, bucket_keys=[5, 9])


def test_bad_keys_are_errors():
    with pytest.raises(ValueError, match=r'example 1 has lengths \(12, 3\), which fit no '
                                         r'bucket key'):
        FixedBucketSampler([(3, 3), (12, 3)], 2, num_buckets=None, bucket_keys=[(10, 10)])
    with pytest.raises(ValueError, match='bucket_keys must be 2-tuples of ints'):
        FixedBucketSampler(PAIRS, 2, num_buckets=None, bucket_keys=[10])
    with pytest.raises(ValueError, match='bucket_keys must be ints for int lengths'):
        FixedBucketSampler([3, 4], 2, num_buckets=None, bucket_keys=[(10, 10)])
    with pytest.raises(ValueError, match='num_buckets must be a positive int when bucket_keys'):
        FixedBucketSampler([3, 4], 2, num_buckets=None)
    with pytest.raises(ValueError, match='equal-size tuples'):
        FixedBucketSampler([(3, 4), (5,)], 2)
    with pytest.raises(ValueError, match='bucket_len_step must be > 0 and != 1'):
        ExpWidthBucket(1.0)


def test_shrinking_exp_widths_and_array_keys_work_as_in_gluonnlp():
    assert ExpWidthBucket(0.5)(100, 10, 3) == gluonnlp.data.ExpWidthBucket(0.5)(100, 10, 3)
    assert ExpWidthBucket(0.5)(100, 10, 3) == [61, 87, 100]
    sampler = FixedBucketSampler(PAIRS, 2, num_buckets=None, bucket_keys=np.array(PAIR_KEYS))
    assert sampler.bucket_keys == [(4, 4), (4, 10), (10, 10)]


def test_sorted_bucket_sampler_default_mult_matches_gluonnlp(sst2_lengths):
    ours = SortedBucketSampler(sort_keys=sst2_lengths, batch_size=16)
    theirs = gluonnlp.data.SortedBucketSampler(sort_keys=sst2_lengths, batch_size=16)
    assert ours.mult == 100
    assert [[int(i) for i in b] for b in ours] == [[int(i) for i in b] for b in theirs]
    lengths = sst2_lengths[[i for b in ours for i in b]]
    assert np.all(np.diff(lengths[:1600]) <= 0) and not np.all(np.diff(lengths) <= 0)


def test_sorted_bucket_sampler_with_tuple_keys():
    sampler = SortedBucketSampler(PAIRS + [(4, 5)], 2, reverse=False)
    assert list(sampler) == [[3, 0], [1, 4], [2]]  # (2,2) (3,9) | (4,2) (4,5) | (8,8)
    np.testing.assert_array_equal(sampler.unsort([3, 0, 1, 4, 2]), np.arange(5))


def test_sorted_sampler_is_stable_and_sorts_tuples_field_by_field():
    assert list(SortedSampler([3, 5, 5, 1])) == [1, 2, 0, 3]
    assert list(SortedSampler([3, 5, 5, 1], reverse=False)) == [3, 0, 1, 2]
    assert list(SortedSampler([(1, 2), (2, 0), (1, 3)])) == [1, 2, 0]
    assert len(SortedSampler([3, 5, 5, 1])) == 4
    rng = np.random.RandomState(0)
    keys = rng.randint(0, 20, size=200).tolist()
    assert list(SortedSampler(keys)) == list(gluonnlp.data.SortedSampler(keys))


def test_split_sampler_parts():
    parts = [SplitSampler(10, 3, k, seed=0) for k in range(3)]
    assert [sorted(p) for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert list(SplitSampler(10, 3, 1, shuffle=False)) == [4, 5, 6]
    twice = list(SplitSampler(10, 3, 2, repeat=2, seed=1))
    assert len(twice) == 6 and sorted(twice) == [7, 7, 8, 8, 9, 9]
    assert list(SplitSampler(10, 3, 2, repeat=2, seed=1)) == twice  # seeded


def test_split_sampler_even_size_tops_up_the_short_parts():
    parts = [list(SplitSampler(10, 4, k, even_size=True, seed=0)) for k in range(4)]
    assert [len(p) for p in parts] == [3, 3, 3, 3]
    assert sorted(parts[0]) == [0, 1, 2] and sorted(parts[2]) == [6, 7, 8]
    assert set(parts[3]) >= {9} and len(set(parts[3])) == 3  # 9 plus 2 distinct extras
    assert len(SplitSampler(10, 4, 3, even_size=True)) == 3


def test_split_sampler_bad_arguments():
    with pytest.raises(ValueError, match=r'length \(2\) must be >= num_parts \(3\)'):
        SplitSampler(2, 3)
    with pytest.raises(ValueError, match=r'part_index must be an int in \[0, num_parts=3\)'):
        SplitSampler(10, 3, 3)
