"""BERTTokenizer: exact parity with HF BertTokenizerFast on real text, Google's rules, offsets."""
import json
import os
import pickle
import random
import unicodedata
import warnings

import gluonnlp
import pytest
import transformers

from gluonbert.data import (BERTBasicTokenizer, BERTTokenizer, BERTVocab, Vocab,
                            bundled_vocab_path, count_tokens)
from gluonbert.data.transforms import BERTTokenizer as TransformsBERTTokenizer

from conftest import REPO, SHARED, SLICE, shared_path  # noqa: E402,F401


def tsv_column(path, names):
    with open(path, encoding='utf-8-sig') as f:
        header, *rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
    return [row[header.index(name)] for row in rows for name in names]


def squad_texts(path):
    with open(path, encoding='utf-8') as f:
        data = json.load(f)['data']
    texts = []
    for article in data:
        for paragraph in article['paragraphs']:
            texts.append(paragraph['context'])
            texts.extend(qa['question'] for qa in paragraph['qas'])
    return texts


@pytest.fixture(scope='module')
def vocab():
    return BERTVocab.from_file(bundled_vocab_path())


@pytest.fixture(scope='module')
def tokenizer(vocab):
    return BERTTokenizer(vocab, lower=True)


@pytest.fixture(scope='module')
def hf():
    # transformers 5 takes the vocab path as `vocab=`; `vocab_file=` is silently ignored there.
    reference = transformers.BertTokenizerFast(vocab=bundled_vocab_path(), do_lower_case=True)
    assert len(reference) == 30522
    reference.backend_tokenizer.model.max_input_chars_per_word = 200  # Google's limit (HF: 100)
    return reference


def hf_ids(hf, texts):
    return hf(texts, add_special_tokens=False, return_attention_mask=False,
              return_token_type_ids=False)['input_ids']


def test_classic_sentence(tokenizer):
    text = "Our friends won't buy this analysis, let alone the next one we propose."
    assert tokenizer.encode_ids(text) == [2256, 2814, 2180, 1005, 1056, 4965, 2023, 4106, 1010,
                                          2292, 2894, 1996, 2279, 2028, 2057, 16599, 1012]
    assert tokenizer(text)[:5] == ['our', 'friends', 'won', "'", 't']


def assert_same_ids(tokenizer, hf, texts, source):
    assert texts, 'no texts read from ' + source
    ours = tokenizer.encode_batch_ids(texts)
    theirs = hf_ids(hf, texts)
    mismatches = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert not mismatches, (f'{source}: {len(mismatches)} of {len(texts)} differ, '
                            f'first: {texts[mismatches[0]]!r}')


def test_parity_with_hf_on_the_committed_sst2_slice(tokenizer, hf):
    for name in ('train.tsv', 'dev.tsv'):
        texts = tsv_column(os.path.join(SLICE, name), ['sentence'])
        assert_same_ids(tokenizer, hf, texts, name)


@pytest.mark.slow
@pytest.mark.parametrize('parts, columns', [
    (('glue', 'SST-2', 'train.tsv'), ['sentence']),
    (('glue', 'SST-2', 'dev.tsv'), ['sentence']),
    (('glue', 'MRPC', 'train.tsv'), ['#1 String', '#2 String']),
    (('glue', 'MRPC', 'dev.tsv'), ['#1 String', '#2 String']),
    (('glue', 'MRPC', 'test.tsv'), ['#1 String', '#2 String']),
])
def test_parity_with_hf_on_every_glue_sentence(tokenizer, hf, parts, columns):
    path = shared_path(*parts)
    assert_same_ids(tokenizer, hf, tsv_column(path, columns), path)


@pytest.mark.parametrize('name', ['train-v1.1-subset.json', 'dev-v1.1-subset.json'])
def test_parity_with_hf_on_squad_contexts_and_questions(tokenizer, hf, name):
    path = shared_path('squad', name)
    assert_same_ids(tokenizer, hf, squad_texts(path), path)


def test_google_rules_match_gluonnlp_python_tokenizer_on_real_text(tokenizer, vocab):
    """GluonNLP 0.10 runs Google's Python BasicTokenizer + WordPiece: a second, independent peer."""
    theirs = gluonnlp.data.BERTTokenizer(gluonnlp.vocab.BERTVocab.from_json(vocab.to_json()),
                                         lower=True)
    texts = tsv_column(os.path.join(SLICE, 'dev.tsv'), ['sentence'])
    texts += tsv_column(os.path.join(SLICE, 'train.tsv'), ['sentence'])[:1000]
    for text in texts:
        assert tokenizer(text) == theirs(text), text


TARGETED = [
    'Héllo Wörld, naïve café déjà vu — Ångström',  # accents stripped by lowercasing
    '北京欢迎你！Tokyo東京 and 서울',  # CJK ideographs split one by one; Hangul is not CJK
    'I love it 😀👍🏽 so much!!!',  # emoji
    'tab\there\x00null\x07bell\u200bzero-width\ufeffbom\r\nnewline',  # control/format characters
    'x' * 201 + ' ok',  # longer than max_input_chars_per_word -> [UNK]
    'y' * 150,  # long but allowed: greedy longest-match pieces
    'unaffable supercalifragilistic antidisestablishmentarianism',
    '',
    '   \t\n  ',
    '“Smart quotes” and ‘single’ … ellipsis – dash',
    '$5.00 (approx.) = 20% off; e-mail: a@b.com #tag',
    'Mixed CASE Words like iPhone and McDONALD',
]


@pytest.mark.parametrize('text', TARGETED)
def test_targeted_cases_match_hf(tokenizer, hf, text):
    assert tokenizer.encode_ids(text) == hf_ids(hf, [text])[0]


def test_ascii_fast_path_equals_the_engine_on_random_ascii(tokenizer):
    """ASCII texts take a regex + word-cache path; it must agree with the Rust engine always."""
    rng = random.Random(0)
    common = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     '
    everything = ''.join(chr(i) for i in range(128))
    texts = [''.join(rng.choice(common if rng.random() < 0.85 else everything)
                     for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    texts += ['x' * 201, 'Ab' * 100 + ' z', 'e\x00mail', 'a\x0bb', 'a\x1fb c\x7fd',
              "won't\tstop\r\n"]
    engine_ids = [enc.ids for enc in tokenizer.encode_batch(texts)]
    assert [tokenizer.encode_ids(text) for text in texts] == engine_ids
    mixed = [t + ' café' if i % 3 == 0 else t for i, t in enumerate(texts[:300])]
    assert tokenizer.encode_batch_ids(mixed) == [enc.ids for enc in tokenizer.encode_batch(mixed)]


def test_words_over_200_characters_become_unk_and_shorter_ones_are_split(tokenizer):
    theirs = gluonnlp.data.BERTTokenizer(
        gluonnlp.vocab.BERTVocab.from_json(tokenizer.vocab.to_json()), lower=True)
    assert tokenizer('a' * 201) == ['[UNK]'] == theirs('a' * 201)
    pieces = tokenizer('a' * 200)
    assert pieces == theirs('a' * 200) and len(pieces) > 1
    assert ''.join(p.lstrip('#') for p in pieces) == 'a' * 200


def test_empty_and_whitespace_only_give_no_tokens(tokenizer):
    for text in ['', ' ', '\t\n \r', '\x00\x01']:
        assert tokenizer.encode(text) == ([], [], [])


def test_literal_special_tokens_in_text_are_plain_text(tokenizer):
    # Google's tokenizer (and ours) never lets input text inject a separator; HF does.
    assert tokenizer('a [SEP] b') == ['a', '[', 'sep', ']', 'b']


def test_offsets_point_at_the_original_text(tokenizer):
    text = 'Zürich’s  CAFÉ, 北京 — unaffable!'
    enc = tokenizer.encode(text)
    assert enc.tokens == ['zurich', '’', 's', 'cafe', ',', '北', '京', '—', 'una', '##ffa',
                          '##ble', '!']
    spans = [text[s:e] for s, e in enc.offsets]
    assert spans == ['Zürich', '’', 's', 'CAFÉ', ',', '北', '京', '—', 'una', 'ffa', 'ble', '!']


def strip_accents_lower(text):
    text = unicodedata.normalize('NFD', text.lower())
    return ''.join(c for c in text if unicodedata.category(c) != 'Mn')


def test_offsets_on_squad_match_hf_and_cover_each_token(tokenizer, hf):
    texts = squad_texts(shared_path('squad', 'dev-v1.1-subset.json'))
    theirs = hf(texts, add_special_tokens=False, return_offsets_mapping=True)['offset_mapping']
    for text, their_offsets, enc in zip(texts, theirs, tokenizer.encode_batch(texts)):
        assert [tuple(o) for o in their_offsets] == enc.offsets
        for token, (start, end) in zip(enc.tokens, enc.offsets):
            if token != '[UNK]':
                assert strip_accents_lower(text[start:end]) == token.replace('##', '', 1)


def make_cased_vocab(path):
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'The', 'the', 'Café', 'café', 'Cafe',
              'cafe', 'Zürich', 'is', 'in', 'Switzerland', 'Sw', '##itz', '##er', '##land', '.',
              ',', 'É', '##é', '##e', 'é', 'e', 'C', '##a', '##f', 'c', 'a', 'f', 'Z', '##ü', '##r',
              '##i', '##c', '##h', 'naïve', 'naive', 'N', '##A', '##Ï', '##V', '##E', 'NAÏVE',
              'Über', 'über', 'Uber']
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(tokens) + '\n')
    return str(path)


CASED_TEXTS = ['The Café in Zürich is naïve.', 'the cafe, THE CAFÉ', 'NAÏVE Über über Uber',
               'Switzerland é É e', 'Zurich Cafe unknownword']


def test_cased_vocab_keeps_accents_like_hf(tmp_path):
    path = make_cased_vocab(tmp_path / 'cased.txt')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the toy vocab is too small for the casing check
        ours = BERTTokenizer(BERTVocab.from_file(path), lower=False)
    hf = transformers.BertTokenizerFast(vocab=path, do_lower_case=False)
    for text in CASED_TEXTS:
        assert ours.encode_ids(text) == hf_ids(hf, [text])[0], text
    assert ours('The Café in Zürich') == ['The', 'Café', 'in', 'Zürich']
    # GluonNLP 0.10 stripped accents even with lower=False: 'Café' became 'Cafe'.
    theirs = gluonnlp.data.BERTTokenizer(
        gluonnlp.vocab.BERTVocab.from_json(BERTVocab.from_file(path).to_json()), lower=False)
    assert theirs('The Café') == ['The', 'Cafe']


def test_strip_accents_can_be_set_explicitly(tmp_path):
    path = make_cased_vocab(tmp_path / 'cased.txt')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ours = BERTTokenizer(BERTVocab.from_file(path), lower=False, strip_accents=True)
    assert ours('The Café') == ['The', 'Cafe']


def test_casing_mismatch_warns(vocab):
    with pytest.warns(UserWarning, match='lower=False but the vocabulary has no upper-case'):
        BERTTokenizer(vocab, lower=False)
    tokens = vocab.idx_to_token[:1000] + [t.capitalize() for t in vocab.idx_to_token[2000:2200]]
    cased = BERTVocab(dict.fromkeys(tokens))  # dict.fromkeys: drop duplicates, keep order
    with pytest.warns(UserWarning, match='lower=True but the vocabulary has .* upper-case'):
        BERTTokenizer(cased, lower=True)


def test_ids_tokens_and_detokenize(tokenizer):
    text = 'The unaffable [weird] café!'
    enc = tokenizer.encode(text)
    assert tokenizer.convert_tokens_to_ids(enc.tokens) == enc.ids
    assert tokenizer.convert_ids_to_tokens(enc.ids) == enc.tokens
    assert tokenizer.detokenize(enc.tokens) == 'the unaffable [ weird ] cafe !'
    assert tokenizer.detokenize(enc.ids) == 'the unaffable [ weird ] cafe !'
    ids = [101] + enc.ids + [102, 0, 0]
    assert tokenizer.detokenize(ids, skip_special_tokens=True) == 'the unaffable [ weird ] cafe !'
    assert tokenizer.is_first_subword('una') and not tokenizer.is_first_subword('##ffa')


def test_tokenizer_pickles_for_dataloader_workers(tokenizer):
    clone = pickle.loads(pickle.dumps(tokenizer))
    assert clone.encode_ids('unaffable café') == tokenizer.encode_ids('unaffable café')


def test_bad_inputs_are_clear_errors(tokenizer, vocab):
    with pytest.raises(TypeError, match='tokenizes str; got bytes'):
        tokenizer(b'bytes')
    with pytest.raises(TypeError, match='text 1 is a NoneType'):
        tokenizer.encode_batch_ids(['ok', None])
    with pytest.raises(TypeError, match='expected a vocabulary .* got str'):
        BERTTokenizer(bundled_vocab_path())
    with pytest.raises(ValueError, match='needs a vocabulary with an unknown_token'):
        BERTTokenizer(Vocab(count_tokens(['a']), unknown_token=None))
    with pytest.raises(ValueError, match='lru_cache_size must be None or an integer >= 1'):
        BERTTokenizer(vocab, lru_cache_size=0)


BASIC_TEXTS = [' \tHeLLo!how  \n Are yoU?  ', 'H\u00e9llo', 'ah\u535a\u63a8zz',
               'ab\u0005cd e\u00a0f',
               'Caf\u00e9 na\u00efve \u2014 \u201cquoted\u201d $5.00 `x` ^_^',
               'don\'t re-use co-op; \u00bfQu\u00e9? \u00a1S\u00ed!',
               '\u0645\u0631\u062d\u0628\u0627 \u4f60\u597d\u4e16\u754c', '']


@pytest.mark.parametrize('lower', [True, False])
def test_basic_tokenizer_is_googles(lower):
    """Referee: HF's Python port of Google's BasicTokenizer; GluonNLP 0.10 where it agrees."""
    ours = BERTBasicTokenizer(lower=lower)
    google = transformers.BasicTokenizer(do_lower_case=lower)
    for text in BASIC_TEXTS:
        assert ours(text) == google.tokenize(text), text
    if lower:  # GluonNLP's cased basic tokenizer strips accents too; Google's keeps them
        theirs = gluonnlp.data.BERTBasicTokenizer(lower=True)
        assert [ours(t) for t in BASIC_TEXTS] == [theirs(t) for t in BASIC_TEXTS]
    assert BERTBasicTokenizer(lower=True)(' \tHeLLo!how ') == ['hello', '!', 'how']
    assert BERTBasicTokenizer(lower=False)('H\u00e9llo, yoU') == ['H\u00e9llo', ',', 'yoU']


def test_basic_tokenizer_character_classes_are_googles():
    from transformers import tokenization_python as google
    ours, theirs = BERTBasicTokenizer(), gluonnlp.data.BERTBasicTokenizer()
    chars = [chr(c) for c in range(0x3000)] + ['\u3000', '\u300c', '\ufeff', '\U0001f600']
    for name in ('_is_whitespace', '_is_control', '_is_punctuation'):
        diff = [c for c in chars if getattr(ours, name)(c) != getattr(google, name)(c)]
        assert not diff, (name, diff[:10])
    for name in ('_is_whitespace', '_is_punctuation'):  # GluonNLP's control test skips Cn/Co
        diff = [c for c in chars if getattr(ours, name)(c) != getattr(theirs, name)(c)]
        assert not diff, (name, diff[:10])
    assert ours._is_punctuation('$') and ours._is_punctuation('`') and not ours._is_punctuation('A')
    assert ours._is_whitespace('\u00a0') and not ours._is_whitespace('-')
    assert ours._is_control('\u0005') and not ours._is_control('\t')


def test_tokenizer_on_a_plain_vocab_matches_gluonnlp():
    pieces = ['[CLS]', '[SEP]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',']
    options = dict(reserved_tokens=['[CLS]', '[SEP]'], unknown_token='[UNK]', padding_token=None,
                   bos_token=None, eos_token=None)
    ours = BERTTokenizer(Vocab(count_tokens(pieces), **options))
    theirs = gluonnlp.data.BERTTokenizer(gluonnlp.Vocab(gluonnlp.data.count_tokens(pieces),
                                                        **options))
    for text in ['UNwant\u00e9d,running', 'unwantedX running', 'wa wawa want,un']:
        assert ours(text) == theirs(text), text
        assert ours.encode_ids(text) == theirs.vocab[theirs(text)], text
    assert ours('UNwant\u00e9d,running') == ['un', '##want', '##ed', ',', 'runn', '##ing']
    assert ours('unwantedX running') == ['[UNK]', 'runn', '##ing']
    assert TransformsBERTTokenizer is BERTTokenizer


def test_gluonnlp_vocab_is_converted(tokenizer, vocab):
    theirs = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(vocab.idx_to_token[1000:3000]))
    ours = BERTTokenizer(theirs)
    assert isinstance(ours.vocab, BERTVocab) and ours.vocab.idx_to_token == theirs.idx_to_token
    text = 'The quick brown fox jumps over the lazy dog.'
    assert ours.encode_ids(text) == theirs[gluonnlp.data.BERTTokenizer(theirs)(text)]


def test_small_word_cache_gives_the_same_ids(tokenizer, vocab):
    small = BERTTokenizer(vocab, lru_cache_size=2)
    texts = ['the unaffable cafe owner', 'a b c d e f g', 'the unaffable cafe owner again']
    assert [small.encode_ids(t) for t in texts] == [tokenizer.encode_ids(t) for t in texts]
    assert len(small._word_ids) < 40  # the cache was emptied instead of growing
