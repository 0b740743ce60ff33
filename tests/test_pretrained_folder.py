"""save_pretrained / from_pretrained: one folder that gluonbert and HuggingFace both load, label
names included; HF task folders load into gluonbert's heads; get_model warns on a dropped head."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import from_pretrained, get_model, save_pretrained
from gluonbert.convert import ConversionError
from gluonbert.data import BERTSentenceTransform, BERTTokenizer, BERTVocab
from gluonbert.inference import SentenceClassifier
from gluonbert.model import (BERTClassifier, BERTForMultipleChoice, BERTForQA,
                             BERTForTokenClassification, BERTModel, BERTRegression)
from gluonbert.data.batchify import bert_inputs
from checkpoint_helpers import hf_config, hf_forward
from conftest import TINY, tiny_model

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

# A real uncased WordPiece vocabulary of TINY's 50 tokens: whole words and ## continuations.
WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'a', 'movie', 'film', 'was', 'is',
         'not', 'very', 'good', 'bad', 'great', 'boring', 'i', 'it', 'this', 'and', 'but', 'love',
         'hate', 'act', '##ing', '##ed', '##s', '##ly', 'plot', 'story', 'end', 'who', 'what',
         'where', 'paris', 'london', 'city', 'in', 'of', 'to', '.', ',', '!', '?', 'fun', 'slow',
         'sad', 'happy', 'people']
assert len(WORDS) == TINY['vocab_size']
TEXTS = ['This movie was very good!', 'the acting is boring, and the plot slow.',
         'I loved it', 'Paris is a city.']
PAIRS = [('the film was great', 'I love it.'), ('boring story', 'it is very good!'),
         ('who acted?', 'people in london')]


@pytest.fixture(name='vocab')
def fixture_vocab():
    return BERTVocab(WORDS)


def randomized(block, scale=0.2):
    """Give every parameter N(0, scale) values (LayerNorm scales 1 + N(0, scale)), so the tiny
    model's outputs differ between texts and the comparisons check real values."""
    for name, param in block._collect_params_with_prefix().items():
        noise = mx.nd.random.normal(0, scale, shape=param.shape)
        param.set_data(noise + 1 if name.endswith('gamma') else noise)
    return block


def head(kind):
    """A tiny task head with random weights; the backbone has exactly the parts it uses."""
    uses_pooler = kind in ('classifier', 'pair', 'regression', 'choice')
    bert = tiny_model(use_pooler=uses_pooler, use_decoder=False, use_classifier=False)
    block = {'classifier': lambda: BERTClassifier(bert, num_classes=2),
             'pair': lambda: BERTClassifier(bert, num_classes=3),
             'regression': lambda: BERTRegression(bert),
             'token': lambda: BERTForTokenClassification(bert, num_classes=4),
             'qa': lambda: BERTForQA(bert),
             'choice': lambda: BERTForMultipleChoice(bert)}[kind]()
    block.initialize_head()
    return randomized(block)


def encode(vocab, texts, pair=False):
    """Texts (or pairs) -> (ids, types, valid_length) NDArrays, as gluonbert tokenizes them."""
    transform = BERTSentenceTransform(BERTTokenizer(vocab, lower=True), TINY['max_length'],
                                      pad=False, pair=pair)
    rows = [transform(t if pair else (t,)).model_inputs() for t in texts]
    return bert_inputs()(rows)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def pipeline_scores(folder, inputs, **kwargs):
    """HF's text-classification pipeline on the folder -> [{label: score}] per input."""
    classify = transformers.pipeline('text-classification', model=folder, top_k=None,
                                     device='cpu', **kwargs)
    return [{r['label']: r['score'] for r in rows} for rows in classify(inputs)]


def test_classifier_folder_loads_in_gluonbert_and_in_hf_pipeline(tmp_path, vocab):
    block = head('classifier')
    folder = save_pretrained(block, str(tmp_path / 'sst'), vocab,
                             labels=['negative', 'positive'], task='SST-2')
    assert sorted(os.listdir(tmp_path)) == ['sst']  # no temporary folder left behind
    assert {'config.json', 'model.safetensors', 'vocab.txt', 'tokenizer_config.json',
            'gluonbert.json', 'export'} <= set(os.listdir(folder))
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    assert config['architectures'] == ['BertForSequenceClassification']
    assert config['id2label'] == {'0': 'negative', '1': 'positive'}
    assert config['label2id'] == {'negative': 0, 'positive': 1}

    inputs = encode(vocab, TEXTS)
    expected = block(*inputs).asnumpy()
    loaded = from_pretrained(folder)
    assert type(loaded) is BERTClassifier
    assert loaded.pretrained_info.labels == ['negative', 'positive']
    assert loaded.pretrained_info.task == 'SST-2' and loaded.pretrained_info.lower
    assert loaded.pretrained_info.vocab == vocab
    np.testing.assert_allclose(loaded(*inputs).asnumpy(), expected, atol=1e-6, rtol=0)

    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    ours = loaded.pretrained_info.tokenizer()
    for text in TEXTS + ['CAFÉ Paris-London']:  # casing and accents follow gluonbert's
        assert hf_tokenizer(text)['input_ids'] == [2] + ours.encode_ids(text) + [3], text
    scores = pipeline_scores(folder, TEXTS)
    probs = softmax(expected)
    assert probs.std(axis=0).max() > 0.01  # the texts get different answers: a real check
    for row, got in zip(probs, scores):
        assert set(got) == {'negative', 'positive'}
        np.testing.assert_allclose([got['negative'], got['positive']], row, atol=1e-5, rtol=0)
    # The export beside it is what SentenceClassifier (predict.py) reads.
    exported = SentenceClassifier(os.path.join(folder, 'export'))
    np.testing.assert_allclose(exported.predict_proba(TEXTS), probs, atol=1e-5, rtol=0)
    assert exported.predict(TEXTS) == [['negative', 'positive'][i] for i in probs.argmax(1)]


def test_sentence_pair_classifier_in_hf_pipeline(tmp_path, vocab):
    block = head('pair')
    labels = ['entailment', 'neutral', 'contradiction']
    folder = save_pretrained(block, str(tmp_path / 'mnli'), vocab, labels=labels)
    probs = softmax(block(*encode(vocab, PAIRS, pair=True)).asnumpy())
    scores = pipeline_scores(folder, [{'text': a, 'text_pair': b} for a, b in PAIRS])
    for row, got in zip(probs, scores):
        np.testing.assert_allclose([got[name] for name in labels], row, atol=1e-5, rtol=0)
    loaded = from_pretrained(folder)
    np.testing.assert_allclose(loaded(*encode(vocab, PAIRS, pair=True)).asnumpy(),
                               block(*encode(vocab, PAIRS, pair=True)).asnumpy(), atol=1e-6)


def test_regression_head_in_hf_pipeline(tmp_path, vocab):
    block = head('regression')
    folder = save_pretrained(block, str(tmp_path / 'sts'), vocab, labels=['similarity'])
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    assert config['problem_type'] == 'regression' and config['id2label'] == {'0': 'similarity'}
    scores = block(*encode(vocab, PAIRS, pair=True)).asnumpy()[:, 0]
    got = pipeline_scores(folder, [{'text': a, 'text_pair': b} for a, b in PAIRS],
                          function_to_apply='none')
    np.testing.assert_allclose([g['similarity'] for g in got], scores, atol=1e-5, rtol=0)
    loaded = from_pretrained(folder)
    assert type(loaded) is BERTRegression
    np.testing.assert_allclose(loaded(*encode(vocab, PAIRS, pair=True)).asnumpy()[:, 0], scores,
                               atol=1e-6)


def torch_inputs(ids, types, lengths):
    """gluonbert's NDArray inputs -> numpy int64 arrays for hf_forward."""
    return [a.asnumpy().astype('int64') for a in (ids, types, lengths)]


def assert_valid_close(ours, theirs, lengths, atol=1e-5):
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(ours[row, :length], theirs[row, :length], atol=atol, rtol=0)


@pytest.mark.parametrize('kind', ['token', 'qa'])
def test_token_and_qa_heads_match_the_hf_classes(tmp_path, vocab, kind):
    block = head(kind)
    labels = ['O', 'B-LOC', 'I-LOC', 'B-PER'] if kind == 'token' else None
    folder = save_pretrained(block, str(tmp_path / kind), vocab, labels=labels)
    inputs = encode(vocab, PAIRS, pair=True)
    ids, types, lengths = torch_inputs(*inputs)
    if kind == 'token':
        theirs = transformers.BertForTokenClassification.from_pretrained(folder).eval()
        assert theirs.config.id2label == dict(enumerate(labels))
        expected = hf_forward(theirs, ids, types, lengths).logits.numpy()
        assert_valid_close(block(*inputs).asnumpy(), expected, lengths)
    else:
        theirs = transformers.BertForQuestionAnswering.from_pretrained(folder).eval()
        expected = hf_forward(theirs, ids, types, lengths)
        start, end = block(*inputs)
        assert_valid_close(start.asnumpy(), expected.start_logits.numpy(), lengths)
        assert_valid_close(end.asnumpy(), expected.end_logits.numpy(), lengths)
    loaded = from_pretrained(folder)
    assert type(loaded) is type(block)
    assert loaded.pretrained_info.labels == labels
    for got, want in zip(as_tuple(loaded(*inputs)), as_tuple(block(*inputs))):
        np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), atol=1e-6)


def as_tuple(outputs):
    return outputs if isinstance(outputs, (tuple, list)) else (outputs,)


def test_multiple_choice_and_backbone_round_trip(tmp_path, vocab):
    block = head('choice')
    folder = save_pretrained(block, str(tmp_path / 'swag'), vocab)
    ids, types, lengths = encode(vocab, PAIRS[:2], pair=True)
    choices = (ids.reshape((1, 2, -1)), types.reshape((1, 2, -1)), lengths.reshape((1, 2)))
    theirs = transformers.BertForMultipleChoice.from_pretrained(folder).eval()
    mask = (np.arange(ids.shape[1])[None] < lengths.asnumpy()[:, None]).astype('int64')
    with torch.no_grad():
        expected = theirs(input_ids=torch.tensor(choices[0].asnumpy().astype('int64')),
                          token_type_ids=torch.tensor(choices[1].asnumpy().astype('int64')),
                          attention_mask=torch.tensor(mask.reshape(1, 2, -1))).logits.numpy()
    np.testing.assert_allclose(block(*choices).asnumpy(), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(from_pretrained(folder)(*choices).asnumpy(), expected, atol=1e-5)

    bert = randomized(tiny_model(use_decoder=False, use_classifier=False))
    folder = save_pretrained(bert, str(tmp_path / 'bert'), vocab)
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        assert json.load(f)['architectures'] == ['BertModel']
    loaded = from_pretrained(folder)
    assert type(loaded) is BERTModel and loaded.use_pooler and not loaded.use_decoder
    inputs = encode(vocab, TEXTS)
    for got, want in zip(loaded(*inputs), bert(*inputs)):
        np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), atol=1e-6)


def test_a_transformers_classifier_folder_loads_with_its_labels(tmp_path, vocab):
    torch.manual_seed(0)
    config = hf_config(num_labels=3, id2label={0: 'sad', 1: 'neutral', 2: 'happy'},
                       label2id={'sad': 0, 'neutral': 1, 'happy': 2})
    theirs = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for param in theirs.parameters():
            param.normal_(0, 0.3)
    theirs.save_pretrained(str(tmp_path / 'hf'))
    tokenizer = transformers.BertTokenizerFast(vocab=write_words(tmp_path / 'words.txt'))
    tokenizer.save_pretrained(str(tmp_path / 'hf'))

    ours = from_pretrained(str(tmp_path / 'hf'))
    assert type(ours) is BERTClassifier
    assert ours.pretrained_info.labels == ['sad', 'neutral', 'happy']
    assert ours.pretrained_info.lower is True and ours.pretrained_info.vocab == vocab
    inputs = encode(vocab, TEXTS)
    expected = hf_forward(theirs, *torch_inputs(*inputs)).logits.numpy()
    np.testing.assert_allclose(ours(*inputs).asnumpy(), expected, atol=1e-5, rtol=0)

    # get_model builds a bare BERTModel: the head is dropped, and it says so and how to keep it.
    gluonbert.register_model('bert_tiny_pretrained_test', **{k: v for k, v in TINY.items()
                                                            if k != 'vocab_size'})
    with pytest.warns(UserWarning, match=r'holds a fine-tuned sequence_classification head \(3 '
                                         r'outputs: sad, neutral, happy\), which is dropped.*'
                                         r'gluonbert\.from_pretrained\(path\)') as caught:
        backbone, _ = get_model('bert_tiny_pretrained_test', pretrained=str(tmp_path / 'hf'))
    assert type(backbone) is BERTModel
    assert sum('which is dropped' in str(w.message) for w in caught) == 1  # said once


def write_words(path):
    path.write_text(''.join(f'{w}\n' for w in WORDS), encoding='utf-8')
    return str(path)


def test_mean_pooling_head_gets_gluonbert_weights_and_no_hf_config(tmp_path, vocab):
    bert = tiny_model(use_pooler=False, use_decoder=False, use_classifier=False)
    block = BERTClassifier(bert, num_classes=2, pooling='mean')
    block.initialize_head()
    folder = save_pretrained(block, str(tmp_path / 'mean'), vocab, labels=['no', 'yes'])
    files = set(os.listdir(folder))
    assert 'config.json' not in files and 'model.safetensors' not in files
    assert {'model.params', 'gluonbert_config.json', 'gluonbert.json'} <= files
    loaded = from_pretrained(folder)
    assert loaded.pooling == 'mean' and loaded.pretrained_info.labels == ['no', 'yes']
    inputs = encode(vocab, TEXTS)
    np.testing.assert_allclose(loaded(*inputs).asnumpy(), block(*inputs).asnumpy(), atol=1e-6)
    with pytest.raises((OSError, ValueError)):  # transformers refuses it instead of guessing
        transformers.AutoConfig.from_pretrained(folder)


def test_save_is_atomic_and_validates_first(tmp_path, vocab):
    block = head('classifier')
    target = str(tmp_path / 'out')
    with pytest.raises(ValueError, match=r'3 label names \(a, b, c\) for a head with 2 outputs'):
        save_pretrained(block, target, vocab, labels=['a', 'b', 'c'])
    with pytest.raises(ValueError, match='BERTForQA has no named outputs'):
        save_pretrained(head('qa'), target, vocab, labels=['a', 'b'])
    with pytest.raises(ConversionError, match='vocabulary has 30522 tokens but the model embeds'):
        save_pretrained(block, target, get_model('bert_2_128_2', pretrained=False)[1])
    assert not os.listdir(tmp_path)
    save_pretrained(block, target, vocab, labels=['a', 'b'])
    with pytest.raises(FileExistsError, match='already exists; pass overwrite=True'):
        save_pretrained(block, target, vocab)
    again = from_pretrained(target)
    save_pretrained(again, target, overwrite=True)  # the vocab it was loaded with by default
    assert from_pretrained(target).pretrained_info.labels == ['a', 'b']
    assert sorted(os.listdir(tmp_path)) == ['out']
    assert not block._active  # saving (exporting) did not hybridize the caller's block


def test_pretraining_model_round_trips_with_its_export(tmp_path, vocab):
    bert = randomized(tiny_model())  # pooler, next-sentence classifier and MLM decoder
    folder = save_pretrained(bert, str(tmp_path / 'pt'), vocab)
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        assert json.load(f)['architectures'] == ['BertForPreTraining']
    inputs = list(encode(vocab, TEXTS[:3])) + [mx.nd.array([[1, 2], [0, 3], [2, 1]])]
    expected = bert(*inputs)
    loaded = from_pretrained(folder)
    assert loaded.use_decoder and loaded.use_classifier
    exported = gluonbert.import_model(os.path.join(folder, 'export', 'model'), num_inputs=4)
    for got_loaded, got_exported, want in zip(loaded(*inputs), exported(*inputs), expected):
        np.testing.assert_allclose(got_loaded.asnumpy(), want.asnumpy(), atol=1e-6)
        np.testing.assert_allclose(got_exported.asnumpy(), want.asnumpy(), atol=1e-5)


def test_head_dropout_comes_back_for_further_fine_tuning(tmp_path, vocab):
    bert = tiny_model(use_pooler=True, use_decoder=False, use_classifier=False)
    block = BERTClassifier(bert, num_classes=2, dropout=0.3)
    block.initialize_head()
    folder = save_pretrained(block, str(tmp_path / 'drop'), vocab)
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        assert json.load(f)['classifier_dropout'] == 0.3  # HF's head drops the same
    loaded = from_pretrained(folder)
    assert type(loaded) is BERTClassifier and loaded.dropout._rate == 0.3
    inputs = encode(vocab, TEXTS)
    np.testing.assert_allclose(loaded(*inputs).asnumpy(), block(*inputs).asnumpy(), atol=1e-6)
    # A transformers folder without classifier_dropout: its head drops hidden_dropout_prob.
    os.remove(os.path.join(folder, 'gluonbert.json'))
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    del config['classifier_dropout']
    with open(os.path.join(folder, 'config.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(config, hidden_dropout_prob=0.2), f)
    assert from_pretrained(folder).dropout._rate == 0.2
    assert from_pretrained(folder).bert.config['dropout'] == 0.2


def test_a_one_output_classifier_stays_a_classifier(tmp_path, vocab):
    bert = tiny_model(use_pooler=True, use_decoder=False, use_classifier=False)
    block = BERTClassifier(bert, num_classes=1)
    block.initialize_head()
    loaded = from_pretrained(save_pretrained(block, str(tmp_path / 'one'), vocab))
    assert type(loaded) is BERTClassifier and loaded.dropout is None
    inputs = encode(vocab, TEXTS)
    np.testing.assert_allclose(loaded(*inputs).asnumpy(), block(*inputs).asnumpy(), atol=1e-6)


ACCENT_WORDS = WORDS[:-6] + ['café', 'cafe', '北京', '北', '京', '##é']
ACCENT_TEXTS = ['Café au 北京', 'the CAFÉ is fun', '北 京 cafe']


def split_all(tokenizer):
    """ACCENT_TEXTS tokenized by a gluonbert or HF tokenizer."""
    return [tokenizer.tokenize(text) for text in ACCENT_TEXTS]


def folder_keeping_accents(tmp_path):
    """A transformers classifier folder whose tokenizer lowercases but keeps accents and does
    not split CJK characters -> (folder, how HF's tokenizer splits ACCENT_TEXTS)."""
    folder = str(tmp_path / 'hf')
    transformers.BertForSequenceClassification(hf_config(num_labels=2)).eval().save_pretrained(
        folder)
    (tmp_path / 'words.txt').write_text(''.join(f'{w}\n' for w in ACCENT_WORDS),
                                        encoding='utf-8')
    transformers.BertTokenizerFast(vocab=str(tmp_path / 'words.txt'), do_lower_case=True,
                                   strip_accents=False, tokenize_chinese_chars=False
                                   ).save_pretrained(folder)
    expected = split_all(transformers.AutoTokenizer.from_pretrained(folder))
    assert expected[0] == ['café', '[UNK]', '北京'] and expected != split_all(
        BERTTokenizer(BERTVocab(ACCENT_WORDS), lower=True))  # the defaults split differently
    return folder, expected


def test_tokenizer_settings_of_a_transformers_folder_are_kept(tmp_path):
    """do_lower_case, strip_accents and tokenize_chinese_chars of tokenizer_config.json decide
    how HF splits text; from_pretrained's tokenizer, the folder save_pretrained writes and its
    export's SentenceClassifier must split it the same way."""
    source, expected = folder_keeping_accents(tmp_path)
    block = from_pretrained(source)
    info = block.pretrained_info
    assert (info.lower, info.strip_accents, info.tokenize_chinese_chars) == (True, False, False)
    assert split_all(info.tokenizer()) == expected

    folder = save_pretrained(block, str(tmp_path / 'ours'))
    assert split_all(transformers.AutoTokenizer.from_pretrained(folder)) == expected
    assert split_all(from_pretrained(folder).pretrained_info.tokenizer()) == expected
    assert split_all(SentenceClassifier(folder).tokenizer) == expected
    # a block given with another vocabulary keeps the folder's accent and CJK settings
    assert split_all(gluonbert.pipeline('text-classification', model=block,
                                        vocab=BERTVocab(ACCENT_WORDS)).tokenizer) == expected


def test_save_pretrained_writes_the_settings_of_the_tokenizer_it_is_given(tmp_path):
    tokenizer = BERTTokenizer(BERTVocab(ACCENT_WORDS), lower=True, strip_accents=False,
                              tokenize_chinese_chars=False)
    folder = save_pretrained(head('classifier'), str(tmp_path / 'ours'), tokenizer=tokenizer)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    assert split_all(theirs) == split_all(tokenizer) and split_all(tokenizer)[0] == [
        'café', '[UNK]', '北京']
    with pytest.raises(TypeError, match='tokenizer must be a gluonbert BERTTokenizer; got '
                                        f'{type(theirs).__name__}'):
        save_pretrained(head('classifier'), str(tmp_path / 'again'), tokenizer=theirs)


@pytest.mark.parametrize('to', ['hf', 'gluonbert'])
def test_converting_a_folder_keeps_its_tokenizer_settings(tmp_path, to):
    from gluonbert.convert_command import main as convert_main
    source, expected = folder_keeping_accents(tmp_path)
    assert convert_main([source, str(tmp_path / 'out'), '--to', to]) == 0
    assert split_all(from_pretrained(str(tmp_path / 'out')).pretrained_info.tokenizer()) == \
        expected
    if to == 'hf':
        assert split_all(transformers.AutoTokenizer.from_pretrained(str(tmp_path / 'out'))) == \
            expected


def test_a_folder_without_basic_tokenization_is_refused(tmp_path):
    """BertTokenizer(do_basic_tokenize=False) runs WordPiece on whitespace-split text only; the
    setting is refused rather than tokenized differently."""
    transformers.BertModel(hf_config()).save_pretrained(str(tmp_path / 'hf'))
    transformers.BertTokenizerFast(vocab=write_words(tmp_path / 'words.txt')).save_pretrained(
        str(tmp_path / 'hf'))
    config_path = tmp_path / 'hf' / 'tokenizer_config.json'
    config = json.loads(config_path.read_text(encoding='utf-8'))
    config_path.write_text(json.dumps(dict(config, do_basic_tokenize=False)), encoding='utf-8')
    with pytest.raises(ConversionError, match='do_basic_tokenize=false'):
        from_pretrained(str(tmp_path / 'hf'))
