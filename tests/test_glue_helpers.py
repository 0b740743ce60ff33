"""data.bert.glue: equal truncation of several sequences and their concatenation (GluonNLP 0.10)."""
import gluonnlp.data.bert.glue as nlp_glue
import numpy as np
import pytest

from conftest import google_longest_first

from gluonbert.data import truncate_pair_lengths
from gluonbert.data.bert.glue import concat_sequences, truncate_lengths_equal, truncate_seqs_equal


def test_truncate_shares_the_budget_equally_and_keeps_short_sequences_whole():
    seqs = [[1, 2, 3], [4, 5, 6]]
    assert truncate_seqs_equal(seqs, 6) is seqs  # fits: the same list back
    assert truncate_seqs_equal(seqs, 4) == [[1, 2], [4, 5]]
    assert truncate_seqs_equal(seqs, 3) == [[1, 2], [4]]  # the leftover token goes first
    assert truncate_seqs_equal([[0] * 9, [1], [2] * 5], 8) == [[0] * 4, [1], [2] * 3]
    # 1 and 2 fit their shares of 20 // 9 and 19 // 8; the other seven share 17 tokens
    assert truncate_lengths_equal(list(range(1, 10)), 20) == [1, 2, 3, 3, 3, 2, 2, 2, 2]
    assert truncate_lengths_equal([5, 7], 0) == [0, 0]



def test_for_pairs_equal_truncation_is_googles_longest_first_rule():
    for len_a in range(0, 12):
        for len_b in range(0, 12):
            for max_tokens in range(0, 25):
                expected = google_longest_first(len_a, len_b, max_tokens)
                assert truncate_pair_lengths(len_a, len_b, max_tokens) == expected
                assert tuple(truncate_lengths_equal([len_a, len_b], max_tokens)) == expected


def test_same_prefixes_as_gluonnlp():
    rng = np.random.RandomState(0)
    for _ in range(200):
        seqs = [list(range(n)) for n in rng.randint(0, 30, size=rng.randint(1, 6))]
        max_len = int(rng.randint(0, 80))
        assert truncate_seqs_equal(seqs, max_len) == nlp_glue.truncate_seqs_equal(seqs, max_len)


def test_truncate_bad_arguments():
    with pytest.raises(TypeError, match='sequences must be a list of sequences; got tuple'):
        truncate_seqs_equal(([1], [2]), 1)
    with pytest.raises(ValueError, match='max_len must be an int >= 0; got -1'):
        truncate_seqs_equal([[1], [2]], -1)


def test_concat_with_separators_segments_and_mask():
    seqs = [['is', 'it', '?'], ['no', '.']]
    tokens, segments, p_mask = concat_sequences(seqs, [['[SEP]'], ['[SEP]'], ['[CLS]']])
    assert tokens == ['is', 'it', '?', '[SEP]', 'no', '.', '[SEP]', '[CLS]']
    assert segments == [0, 0, 0, 0, 1, 1, 1, 2]
    assert p_mask == [0, 0, 0, 1, 0, 0, 1, 1]
    tokens, segments, p_mask = concat_sequences(seqs, [['[SEP]'], [], ['[CLS]']],
                                                seq_mask=[[1, 1, 1], [0, 0]],
                                                separator_mask=[[1], [], [0]])
    assert tokens == ['is', 'it', '?', '[SEP]', 'no', '.', '[CLS]']
    assert segments == [0, 0, 0, 0, 1, 1, 2]
    assert p_mask == [1, 1, 1, 1, 0, 0, 0]
    assert concat_sequences([[1, 2], [3]], [[0]]) == ([1, 2, 0, 3], [0, 0, 0, 1], [0, 0, 1, 0])
    theirs = nlp_glue.concat_sequences(seqs, [['[SEP]'], ['[SEP]'], ['[CLS]']])
    assert concat_sequences(seqs, [['[SEP]'], ['[SEP]'], ['[CLS]']]) == theirs


def test_concat_bad_masks_are_errors():
    with pytest.raises(ValueError, match=r'seq_mask must give one value per item: item counts '
                                         r'\[3, 2\], mask counts \[3, 1\]'):
        concat_sequences([[1, 2, 3], [4, 5]], [[0], [0]], seq_mask=[[0, 0, 0], [0]])
    with pytest.raises(ValueError, match='give 4 values for 6 tokens'):
        concat_sequences([[1, 2], [3, 4]], [[0], [0]], seq_mask=[[0, 0]])
    with pytest.raises(ValueError, match='seqs is empty'):
        concat_sequences([], [[0]])
