"""BERTSentenceTransform and dataset transforms vs GluonNLP 0.10 and HF, truncation, bad input."""
import itertools
import os
import warnings

import gluonnlp
import numpy as np
import pytest
import transformers

from gluonbert.data import (BERTSentenceTransform, BERTTokenizer, BERTVocab,
                            ClassificationTransform, RegressionTransform, Vocab,
                            bundled_vocab_path, count_tokens, truncate_pair_lengths)

# Truncation warns once per transform; test_truncation_warns_once_and_reports checks that.
pytestmark = pytest.mark.filterwarnings('ignore:texts longer than max_seq_length')

from conftest import (REPO, SHARED, SLICE, google_longest_first,  # noqa: E402,F401
                      shared_path)


def read_rows(path, names):
    with open(path, encoding='utf-8-sig') as f:
        header, *rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
    return [tuple(row[header.index(n)] for n in names) for row in rows]


@pytest.fixture(scope='module')
def vocab():
    return BERTVocab.from_file(bundled_vocab_path())


@pytest.fixture(scope='module')
def tokenizer(vocab):
    return BERTTokenizer(vocab)


@pytest.fixture(scope='module')
def gluonnlp_tokenizer(vocab):
    return gluonnlp.data.BERTTokenizer(gluonnlp.vocab.BERTVocab.from_json(vocab.to_json()))


def test_truncate_pair_lengths_is_googles_longest_first_rule():
    for a, b, budget in itertools.product(range(12), range(12), range(1, 15)):
        assert truncate_pair_lengths(a, b, budget) == google_longest_first(a, b, budget), \
            (a, b, budget)


@pytest.mark.parametrize('max_len', [128, 24])
def test_pairs_match_gluonnlp_transform_on_mrpc(tokenizer, gluonnlp_tokenizer, max_len):
    rows = read_rows(shared_path('glue', 'MRPC', 'dev.tsv'), ['#1 String', '#2 String'])[:300]
    ours = BERTSentenceTransform(tokenizer, max_len, pad=True, pair=True)
    theirs = gluonnlp.data.BERTSentenceTransform(gluonnlp_tokenizer, max_len, pad=True, pair=True)
    for row in rows:
        mine, ref = ours(row), theirs(row)
        np.testing.assert_array_equal(mine.input_ids, ref[0])  # same ids: ref vocab is ours
        assert int(mine.valid_length) == int(ref[1])
        np.testing.assert_array_equal(mine.segment_ids, ref[2])
        assert mine.input_ids.dtype == ref[0].dtype == np.int32
    if max_len == 24:
        assert ours.truncation.truncated > 250  # MRPC pairs are ~50 tokens
    else:
        assert ours.truncation.truncated == 0
    assert ours.truncation.examples == len(rows)


def test_single_sentences_match_gluonnlp_unpadded(tokenizer, gluonnlp_tokenizer):
    rows = read_rows(os.path.join(REPO, 'data', 'sst2', 'dev.tsv'), ['sentence'])
    ours = BERTSentenceTransform(tokenizer, 16, pad=False, pair=False)
    theirs = gluonnlp.data.BERTSentenceTransform(gluonnlp_tokenizer, 16, pad=False, pair=False)
    for row in rows:
        for mine, ref in zip(ours(row), theirs(row)):
            np.testing.assert_array_equal(mine, ref)
    assert 0 < ours.truncation.truncated < len(rows)
    assert ours.truncation.report().startswith(f'{ours.truncation.truncated} of {len(rows)} '
                                               f'examples')


def test_untruncated_pairs_match_hf(tokenizer):
    hf = transformers.BertTokenizerFast(vocab=bundled_vocab_path(), do_lower_case=True)
    rows = read_rows(shared_path('glue', 'MRPC', 'train.tsv'), ['#1 String', '#2 String'])[:200]
    transform = BERTSentenceTransform(tokenizer, 512, pad=False)
    for a, b in rows:
        ref = hf(a, b)
        mine = transform((a, b))
        assert mine.input_ids.tolist() == ref['input_ids']
        assert mine.segment_ids.tolist() == ref['token_type_ids']


def test_truncation_warns_once_and_reports(tokenizer):
    transform = BERTSentenceTransform(tokenizer, 6, pair=True, pad=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        transform(('one two three', 'four five six'))  # 6 tokens, budget 3: 3 dropped
        transform(('a', 'b'))
        transform.batch([('one two', 'three four five')] * 2)  # 5 tokens each: 2 + 2 dropped
    assert [str(w.message) for w in caught] == [
        'texts longer than max_seq_length=6 are being truncated; see .truncation.report() '
        'for the count']
    assert transform.truncation.report() == ('3 of 4 examples (75.00%) were truncated to '
                                             'max_seq_length=6 (7 tokens dropped)')


def test_gluonnlp_unpacking_order_and_model_order(tokenizer):
    transform = BERTSentenceTransform(tokenizer, 12, pair=False)
    data, length, segment_type = transform(['hello world'])  # GluonNLP tutorial code
    assert data.tolist() == [101, 7592, 2088, 102] + [0] * 8
    assert int(length) == 4 and segment_type.tolist() == [0] * 12
    features = transform('hello world')  # a bare str is fine for single texts
    ids, types, valid = features.model_inputs()
    assert ids is features.input_ids and types is features.token_types and valid == 4


def test_empty_text_gives_cls_sep(tokenizer):
    single = BERTSentenceTransform(tokenizer, 8, pad=False, pair=False)
    assert single(('',)).input_ids.tolist() == [101, 102]
    pair = BERTSentenceTransform(tokenizer, 8, pad=False, pair=True)
    # GluonNLP (like Google's run_classifier) drops the second [SEP] for an empty text_b; we keep
    # the pair layout, as HF does.
    assert pair(('', '')).input_ids.tolist() == [101, 102, 102]
    assert pair(('', '')).segment_ids.tolist() == [0, 0, 1]


def test_batch_equals_one_by_one(tokenizer):
    rows = [('a first text that is rather long for eight tokens', 'short'), ('', 'b'),
            ('x', 'y z'), ('naïve café', '北京')]
    for pad in (True, False):
        transform = BERTSentenceTransform(tokenizer, 10, pad=pad)
        batch = transform.batch(rows)
        singles = [transform(row) for row in rows]
        width = 10 if pad else max(int(s.valid_length) for s in singles)
        assert batch.input_ids.shape == (4, width) and batch.input_ids.dtype == np.int32
        for row, single in enumerate(singles):
            n = int(single.valid_length)
            assert batch.valid_length[row] == n
            np.testing.assert_array_equal(batch.input_ids[row, :n], single.input_ids[:n])
            np.testing.assert_array_equal(batch.segment_ids[row, :n], single.segment_ids[:n])
            assert not batch.input_ids[row, n:].any()
        assert transform.truncation.truncated == 2  # the long pair, counted in both passes


def test_another_vocab_remaps_tokens(tokenizer, vocab):
    gluonnlp_order = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(vocab.idx_to_token))
    other = BERTVocab.from_json(gluonnlp_order.to_json())
    transform = BERTSentenceTransform(tokenizer, 8, vocab=other, pad=True, pair=False)
    features = transform(('hello world',))
    assert other.to_tokens(features.input_ids.tolist()) == [
        '[CLS]', 'hello', 'world', '[SEP]', '[PAD]', '[PAD]', '[PAD]', '[PAD]']
    assert features.input_ids[0] == other['[CLS]'] != vocab['[CLS]']
    batch = transform.batch([('hello world',)])
    np.testing.assert_array_equal(batch.input_ids[0], features.input_ids)


def test_a_gluonnlp_vocab_object_is_converted(tokenizer, vocab):
    gluonnlp_order = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(vocab.idx_to_token))
    transform = BERTSentenceTransform(tokenizer, 6, vocab=gluonnlp_order, pair=False)
    assert isinstance(transform.vocab, BERTVocab)
    ids = transform('hello world').input_ids.tolist()
    assert ids == gluonnlp_order[['[CLS]', 'hello', 'world', '[SEP]', '[PAD]', '[PAD]']]


def test_counter_built_vocab_matches_gluonnlp():
    pieces = ['is', 'this', 'jack', '##son', '##ville', '?', 'no', 'it', 'is', 'not']
    ours = BERTSentenceTransform(BERTTokenizer(BERTVocab(count_tokens(pieces))), 15)
    nlp_vocab = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(pieces))
    theirs = gluonnlp.data.BERTSentenceTransform(gluonnlp.data.BERTTokenizer(nlp_vocab), 15)
    pair = ('is this jacksonville ?', 'no it is not')
    mine, ref = ours(pair), theirs(pair)
    for a, b in zip(mine, ref):
        np.testing.assert_array_equal(a, b)
    # [UNK] [CLS] [SEP] [MASK] [PAD], then "is" (counted twice) = 5, then the rest by token
    assert mine.input_ids.tolist() == [1, 5, 13, 10, 6, 7, 8, 2, 11, 9, 5, 12, 2, 4, 4]
    assert mine.valid_length == 13
    assert mine.segment_ids.tolist() == [0] * 8 + [1] * 5 + [0] * 2


def test_missing_tokenizer_or_bert_tokens_are_clear_errors():
    with pytest.raises(TypeError, match=r'tokenizer=\.\.\.\) needs a gluonbert BERTTokenizer, '
                                        r'e\.g\. BERTTokenizer\(BERTVocab\.from_file\(path\)\); '
                                        r'got NoneType'):
        BERTSentenceTransform(None, 16)
    plain = BERTTokenizer(Vocab(count_tokens(['a', 'b']), unknown_token='[UNK]'))
    with pytest.raises(ValueError, match='needs a vocabulary with cls_token, sep_token; use a '
                                         'BERTVocab'):
        BERTSentenceTransform(plain, 16)


@pytest.mark.parametrize('line, error, message', [
    ('just one text', TypeError, 'pass \\(text_a, text_b\\)'),
    (('only a',), ValueError, 'expected 2 texts'),
    (('a', None), TypeError, 'texts must be str'),
])
def test_bad_lines_for_pairs(tokenizer, line, error, message):
    with pytest.raises(error, match=message):
        BERTSentenceTransform(tokenizer, 16)(line)


def test_max_seq_length_too_small(tokenizer):
    with pytest.raises(ValueError, match='max_seq_length must be an integer >= 3'):
        BERTSentenceTransform(tokenizer, 2, pair=True)


def test_classification_transform_in_model_order(tokenizer):
    transform = ClassificationTransform(tokenizer, 16, labels=['neg', 'pos'], pair=True)
    ids, types, length, label = transform(('good film', 'i liked it', 'pos'))
    assert ids.tolist() == [101, 2204, 2143, 102, 1045, 4669, 2009, 102]
    assert types.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert int(length) == 8 and label == 1 and label.dtype == np.int32
    with pytest.raises(ValueError,
                       match=r"label 'neutral' is not in the label set \['neg', 'pos'\]"):
        transform(('a', 'b', 'neutral'))
    unlabeled = ClassificationTransform(tokenizer, 16, pair=False, has_label=False)
    assert len(unlabeled(('good film',))) == 3


def test_regression_transform(tokenizer):
    transform = RegressionTransform(tokenizer, 16)
    *_, score = transform(('a man plays', 'a person plays', '3.8'))
    assert score.dtype == np.float32 and score == np.float32(3.8)
    with pytest.raises(ValueError, match="regression target 'high' is not a number"):
        transform(('a', 'b', 'high'))

