"""Vocab and BERTVocab: vocab.txt order, GluonNLP 0.10's constructor and JSON in both directions,
GluonNLP vocab objects converted, token counting, lookups and bad input."""
import collections
import json
import random

import gluonnlp
import numpy as np
import pytest

import gluonbert
from gluonbert.data import BERTVocab, Vocab, as_vocab, bundled_vocab_path, count_tokens
from gluonbert.data.utils import Counter

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
    assert ours.reserved_tokens == ['[CLS]', '[SEP]', '[MASK]', '[PAD]', '[unused7]']
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


def _sample_tokens(seed=0, size=400):
    """A seeded sample of real word pieces, with repeats so counts differ."""
    words = open(bundled_vocab_path(), encoding='utf-8').read().split('\n')[2000:2300]
    rng = random.Random(seed)
    return [rng.choice(words[:rng.randint(1, 300)]) for _ in range(size)]


GLUONNLP_VOCAB_OPTIONS = [
    {}, dict(max_size=20), dict(min_freq=3), dict(max_size=7, min_freq=2),
    dict(unknown_token=None), dict(reserved_tokens=['<x>', '<y>'], bos_token=None),
    dict(padding_token=None, eos_token=None, special_token='<s>'),
]


@pytest.mark.parametrize('options', GLUONNLP_VOCAB_OPTIONS)
def test_vocab_from_a_counter_is_gluonnlps(options):
    tokens = _sample_tokens()
    ours = Vocab(count_tokens(tokens), **options)
    theirs = gluonnlp.Vocab(gluonnlp.data.count_tokens(tokens), **options)
    assert ours.idx_to_token == theirs.idx_to_token
    assert ours.to_json() == theirs.to_json()  # byte for byte, identifiers included
    assert ours.reserved_tokens == (theirs.reserved_tokens or [])
    probe = ours.idx_to_token[:12]
    assert ours[probe] == theirs[probe] == list(range(len(probe)))
    if options == dict(max_size=20):
        assert len(ours) == 4 + 20  # <unk>, <pad>, <bos>, <eos> do not count towards max_size


@pytest.mark.parametrize('options', [{}, dict(max_size=9), dict(min_freq=2),
                                     dict(unknown_token=None), dict(bos_token='<s>'),
                                     dict(reserved_tokens=['[unused7]'])])
def test_bert_vocab_from_a_counter_is_gluonnlps(options):
    tokens = _sample_tokens(seed=1)
    ours = BERTVocab(count_tokens(tokens), **options)
    theirs = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(tokens), **options)
    assert ours.idx_to_token == theirs.idx_to_token
    assert ours.to_json() == theirs.to_json()
    assert ours.reserved_tokens == theirs.reserved_tokens
    if options.get('unknown_token', '[UNK]'):
        assert ours.idx_to_token[:5] == ['[UNK]', '[CLS]', '[SEP]', '[MASK]', '[PAD]']


def test_token_to_idx_moves_tokens_like_gluonnlp():
    tokens = _sample_tokens(seed=2)
    placed = {'[PAD]': 0, tokens[3]: 5, '[UNK]': 11}
    ours = BERTVocab(count_tokens(tokens), token_to_idx=placed)
    theirs = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(tokens), token_to_idx=placed)
    assert ours.idx_to_token == theirs.idx_to_token
    assert [ours[t] for t in placed] == [0, 5, 11]
    assert ours['never-seen-token'] == 11  # unknown tokens follow the moved [UNK]
    with pytest.raises(ValueError, match='only place tokens of the vocabulary'):
        BERTVocab(count_tokens(tokens), token_to_idx={'zzz-not-there': 1})
    with pytest.raises(ValueError, match='same id to two tokens'):
        BERTVocab(count_tokens(tokens), token_to_idx={'[PAD]': 1, '[CLS]': 1})
    with pytest.raises(ValueError, match=r'ids must be in \[0, '):
        BERTVocab(count_tokens(tokens), token_to_idx={'[PAD]': 10**6})


def test_no_unknown_token_makes_lookups_of_unknown_tokens_key_errors():
    vocab = BERTVocab(unknown_token=None)
    assert vocab.idx_to_token == ['[CLS]', '[SEP]', '[MASK]', '[PAD]']
    assert vocab[['[PAD]', '[CLS]']] == [3, 0]
    with pytest.raises(KeyError, match="'hello' is not in the vocabulary, which has no "):
        vocab['hello']
    with pytest.raises(KeyError, match='hello'):
        vocab[['[PAD]', 'hello']]
    again = BERTVocab.from_json(vocab.to_json())
    assert again == vocab and again.unknown_token is None


def test_json_is_shared_by_vocab_and_bert_vocab_both_ways():
    bert = BERTVocab(count_tokens(_sample_tokens(seed=3)), unknown_token='<unk>')
    plain = Vocab.from_json(bert.to_json())  # a general Vocab keeps BERT's identifiers
    assert plain.idx_to_token == bert.idx_to_token
    assert (plain.cls_token, plain.sep_token, plain.mask_token) == ('[CLS]', '[SEP]', '[MASK]')
    assert plain['hello-not-there'] == bert['hello-not-there'] == 0
    theirs = gluonnlp.Vocab.from_json(bert.to_json())
    assert theirs.idx_to_token == bert.idx_to_token and theirs.mask_token == '[MASK]'
    ours = Vocab.from_json(gluonnlp.Vocab(gluonnlp.data.count_tokens(['b', 'a', 'a'])).to_json())
    assert ours.idx_to_token == ['<unk>', '<pad>', '<bos>', '<eos>', 'a', 'b']
    assert (ours.padding_token, ours.bos_token, ours.eos_token) == ('<pad>', '<bos>', '<eos>')


def test_token_list_and_counter_constructors_are_told_apart():
    listed = BERTVocab(['[PAD]', 'b', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a'])
    assert listed['a'] == 6 and listed['[PAD]'] == 0  # kept in the given order
    counted = BERTVocab(collections.Counter(['b', 'a', 'a']))
    assert counted.idx_to_token == ['[UNK]', '[CLS]', '[SEP]', '[MASK]', '[PAD]', 'a', 'b']
    assert BERTVocab({'a': 2, 'b': 5}).idx_to_token[5:] == ['b', 'a']  # a dict of counts
    assert BERTVocab().idx_to_token == ['[UNK]', '[CLS]', '[SEP]', '[MASK]', '[PAD]']
    assert BERTVocab({}) == BERTVocab()  # an empty mapping is an empty count
    with pytest.raises(ValueError, match='apply to a Counter'):
        BERTVocab(listed.idx_to_token, max_size=3)
    with pytest.raises(TypeError, match='BERTVocab.from_file'):
        BERTVocab(bundled_vocab_path())
    with pytest.raises(ValueError, match='BERT needs a mask_token'):
        BERTVocab(collections.Counter(['a']), mask_token=None)
    with pytest.raises(ValueError, match="reserved token '\\[CLS\\]' is given twice"):
        BERTVocab(collections.Counter(['a']), reserved_tokens=['[CLS]'])
    with pytest.raises(ValueError, match='min_freq must be an integer >= 1'):
        Vocab(collections.Counter(['a']), min_freq=0)


def test_gluonnlp_vocab_objects_are_converted_with_their_ids(uncased):
    theirs = gluonnlp.vocab.BERTVocab.from_json(uncased.to_json())
    converted = as_vocab(theirs)
    assert type(converted) is BERTVocab and converted == uncased
    plain = gluonnlp.Vocab(gluonnlp.data.count_tokens(['x', 'y', 'y']), bos_token=None)
    ours = as_vocab(plain)
    assert type(ours) is Vocab and ours.idx_to_token == ['<unk>', '<pad>', '<eos>', 'y', 'x']
    assert as_vocab(uncased) is uncased
    with pytest.raises(TypeError, match='expected a vocabulary .* got list'):
        as_vocab(['a', 'b'])


def test_count_tokens_and_counter_discard_match_gluonnlp():
    tokens = ['The', 'the', 'a', 'THE', 'b', 'a', 'c']
    assert count_tokens(tokens) == gluonnlp.data.count_tokens(tokens)
    assert count_tokens(tokens, to_lower=True) == collections.Counter(the=3, a=2, b=1, c=1)
    base = collections.Counter(['x'])
    assert count_tokens(['x', 'z'], counter=base) is base and base == {'x': 2, 'z': 1}
    ours = Counter(tokens).discard(2, '<unk>')
    assert ours == gluonnlp.data.utils.Counter(tokens).discard(2, '<unk>')
    assert ours == {'a': 2, '<unk>': 5} and isinstance(ours, Counter)
    assert list(Counter(a=3).discard(2, '<unk>').items()) == [('a', 3), ('<unk>', 0)]


def test_gluonnlp_module_names():
    assert gluonbert.vocab.BERTVocab is BERTVocab and gluonbert.Vocab is Vocab
    bert = gluonbert.vocab.bert
    assert (bert.CLS_TOKEN, bert.SEP_TOKEN, bert.MASK_TOKEN, bert.PADDING_TOKEN,
            bert.UNKNOWN_TOKEN) == ('[CLS]', '[SEP]', '[MASK]', '[PAD]', '[UNK]')
    assert gluonbert.data.count_tokens is count_tokens


def test_from_sentencepiece_without_sentencepiece_is_a_clear_error(tmp_path):
    try:
        import sentencepiece  # noqa: F401
        pytest.skip('sentencepiece is installed')
    except ImportError:
        pass
    with pytest.raises(ImportError, match='pip install sentencepiece'):
        BERTVocab.from_sentencepiece(str(tmp_path / 'model.spm'))
