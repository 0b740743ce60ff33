"""BERTVocab: vocab.txt order, GluonNLP 0.10 JSON in both directions, lookups and bad input."""
import json

import gluonnlp
import numpy as np
import pytest

from gluonbert.data import BERTVocab, bundled_vocab_path

SPECIAL_NAMES = ('unknown_token', 'padding_token', 'cls_token', 'sep_token', 'mask_token',
                 'bos_token', 'eos_token')


@pytest.fixture(scope='module')
def uncased():
    return BERTVocab.from_file(bundled_vocab_path())


def test_vocab_txt_keeps_file_order(uncased):
    assert len(uncased) == 30522
    assert uncased[['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']] == [0, 100, 101, 102, 103]
    assert uncased['the'] == 1996 and uncased.to_tokens(1996) == 'the'
    assert uncased['definitely-not-a-token'] == 100
    assert uncased.to_tokens(np.array([101, 102])) == ['[CLS]', '[SEP]']
    assert uncased.to_tokens([np.int64(0)]) == ['[PAD]']


def test_to_tokens_rejects_out_of_range_ids(uncased):
    with pytest.raises(ValueError, match='token id -1 is out of range'):
        uncased.to_tokens(-1)  # no silent wrap-around to the last token
    with pytest.raises(ValueError, match='30522 is out of range'):
        uncased.to_tokens([5, 30522])


def test_our_json_is_read_by_gluonnlp_with_the_same_ids(uncased):
    theirs = gluonnlp.vocab.BERTVocab.from_json(uncased.to_json())
    assert theirs.idx_to_token == uncased.idx_to_token
    for name in SPECIAL_NAMES:
        assert getattr(theirs, name) == getattr(uncased, name), name
    assert theirs['[CLS]'] == 101 and theirs['hello'] == uncased['hello']


def _gluonnlp_style_vocab():
    """A GluonNLP-built vocab: special tokens first, then frequency order (not vocab.txt order)."""
    tokens = open(bundled_vocab_path(), encoding='utf-8').read().split('\n')[1000:1300]
    counter = gluonnlp.data.count_tokens(tokens + tokens[:40])
    return gluonnlp.vocab.BERTVocab(counter, reserved_tokens=['[unused7]'])


def test_gluonnlp_json_is_read_with_its_own_order():
    theirs = _gluonnlp_style_vocab()
    ours = BERTVocab.from_json(theirs.to_json())
    assert ours.idx_to_token == theirs.idx_to_token
    assert ours.idx_to_token[:5] == ['[UNK]', '[CLS]', '[SEP]', '[MASK]', '[PAD]']
    for name in SPECIAL_NAMES:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.reserved_tokens == ['[unused7]']
    for token in ['[PAD]', '[CLS]', theirs.idx_to_token[77], 'nope']:
        assert ours[token] == theirs[token]
    # and back: gluonnlp reads what we write from its vocab identically
    again = gluonnlp.vocab.BERTVocab.from_json(ours.to_json())
    assert again.idx_to_token == theirs.idx_to_token
    assert again.reserved_tokens == theirs.reserved_tokens


def test_from_json_reads_a_path(tmp_path, uncased):
    path = tmp_path / 'vocab.json'
    path.write_text(uncased.to_json(), encoding='utf-8')
    assert BERTVocab.from_json(str(path)) == uncased


def test_from_json_reads_old_gluonnlp_top_level_special_tokens():
    data = dict(idx_to_token=['[UNK]', '[PAD]', '[CLS]', '[SEP]', '[MASK]', 'a'],
                token_to_idx={'[UNK]': 0, '[PAD]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4, 'a': 5},
                unknown_token='[UNK]', padding_token='[PAD]', cls_token='[CLS]',
                sep_token='[SEP]', mask_token='[MASK]', reserved_tokens=None)
    vocab = BERTVocab.from_json(json.dumps(data))
    assert vocab.padding_token == '[PAD]' and vocab['a'] == 5


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d['token_to_idx'].update({'a': 4, '[MASK]': 5}), r"idx_to_token\[4\] = '\[MASK\]'"),
    (lambda d: d['identifiers_to_tokens'].update(mask_token='<mask>'),
     r"mask_token='<mask>' is not in the vocabulary"),
    (lambda d: d['idx_to_token'].append('b'), '7 entries in idx_to_token but 6'),
    (lambda d: d['identifiers_to_tokens'].pop('sep_token'), 'BERT needs a sep_token'),
])
def test_from_json_rejects_inconsistent_files(mutate, message):
    tokens = ['[UNK]', '[PAD]', '[CLS]', '[SEP]', '[MASK]', 'a']
    data = dict(idx_to_token=tokens, token_to_idx={t: i for i, t in enumerate(tokens)},
                unknown_token='[UNK]', reserved_tokens=['[PAD]', '[CLS]', '[SEP]', '[MASK]'],
                identifiers_to_tokens=dict(padding_token='[PAD]', cls_token='[CLS]',
                                           sep_token='[SEP]', mask_token='[MASK]'))
    BERTVocab.from_json(json.dumps(data))  # the unmutated file is fine
    mutate(data)
    with pytest.raises(ValueError, match=message):
        BERTVocab.from_json(json.dumps(data))


def test_from_json_with_missing_file_or_bad_text():
    with pytest.raises(FileNotFoundError, match='not found'):
        BERTVocab.from_json('/nonexistent/vocab.json')
    with pytest.raises(ValueError, match='not valid JSON'):
        BERTVocab.from_json('{"idx_to_token": [')


def test_duplicate_and_missing_special_tokens_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'a' appears twice .*ids 5 and 6"):
        BERTVocab(['[UNK]', '[PAD]', '[CLS]', '[SEP]', '[MASK]', 'a', 'a'])
    with pytest.raises(ValueError, match=r"cls_token='\[CLS\]' is not in the vocabulary"):
        BERTVocab(['[UNK]', '[PAD]', '[SEP]', '[MASK]'])


def test_vocab_txt_round_trip(tmp_path, uncased):
    path = tmp_path / 'vocab.txt'
    uncased.to_file(str(path))
    assert BERTVocab.from_file(str(path)) == uncased
    assert path.read_bytes() == open(bundled_vocab_path(), 'rb').read()
    assert len({uncased, BERTVocab.from_file(str(path))}) == 1  # equal vocabs hash alike
