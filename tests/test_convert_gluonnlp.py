"""GluonNLP 0.10 `.params` and JSON vocabularies written by gluonnlp itself."""
import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import get_model
from gluonbert.convert import ConversionError, load_checkpoint, model_from_checkpoint
from gluonbert.data import BERTVocab
from checkpoint_helpers import gluonnlp_model
from conftest import TINY

pytest.importorskip('gluonnlp')
SHAPE = {k: v for k, v in TINY.items() if k not in ('vocab_size', 'dropout')}


@pytest.fixture(autouse=True, scope='module')
def tiny_shape():
    """A registered name for conftest.TINY's shape (GluonNLP files need a named shape)."""
    gluonbert.register_model('bert_2_16_4_nlptest', **SHAPE)


def batch(vocab_size):
    ids = mx.nd.array(np.random.RandomState(3).randint(0, vocab_size, (3, 9)))
    types = mx.nd.array(np.random.RandomState(4).randint(0, 2, (3, 9)))
    return ids, types, mx.nd.array([9, 5, 1]), mx.nd.array([[0, 4], [2, 1], [0, 0]])


def compare(ours, theirs, lengths):
    """Outputs in GluonNLP's order; sequence outputs compared at valid positions."""
    assert len(ours) == len(theirs)
    for got, expected in zip(ours, theirs):
        got, expected = got.asnumpy(), expected.asnumpy()
        assert got.shape == expected.shape
        if got.ndim == 3 and got.shape[1] == 9:
            valid = np.arange(9)[None] < lengths.asnumpy()[:, None]
            got, expected = got[valid], expected[valid]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('heads', [(True, True, True), (True, False, False)],
                         ids=['all_heads', 'pooler_only'])
def test_params_saved_by_gluonnlp_give_gluonnlp_outputs(tmp_path, heads):
    reference, nlp_vocab = gluonnlp_model(*heads)
    reference.save_parameters(str(tmp_path / 'bert.params'))
    (tmp_path / 'vocab.json').write_text(nlp_vocab.to_json(), encoding='utf-8')
    vocab = BERTVocab.from_json(str(tmp_path / 'vocab.json'))
    assert vocab.idx_to_token == nlp_vocab.idx_to_token
    assert vocab[vocab.cls_token] == nlp_vocab[nlp_vocab.cls_token]

    model, got_vocab = get_model('bert_2_16_4_nlptest', pretrained=str(tmp_path / 'bert.params'),
                                 vocab=vocab, dropout=0.0)
    assert got_vocab is vocab
    assert (model.use_pooler, model.use_decoder, model.use_classifier) == heads
    ids, types, lengths, masked = batch(len(vocab))
    masked = masked if heads[1] else None
    compare(model(ids, types, lengths, masked), reference(ids, types, lengths, masked), lengths)


def test_params_need_a_model_shape_and_a_vocab(tmp_path):
    reference, nlp_vocab = gluonnlp_model()
    reference.save_parameters(str(tmp_path / 'bert.params'))
    with pytest.raises(ConversionError, match='carries no configuration: give num_heads'):
        load_checkpoint(str(tmp_path / 'bert.params'))
    checkpoint = load_checkpoint(str(tmp_path / 'bert.params'), num_heads=4)
    with pytest.raises(ConversionError, match='carries no hyperparameters'):
        model_from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match='ships no vocabulary; pass vocab='):
        get_model('bert_2_16_4_nlptest', pretrained=str(tmp_path / 'bert.params'))
    small = BERTVocab(nlp_vocab.idx_to_token[:40])
    with pytest.raises(ConversionError, match='vocabulary has 40 tokens, word embedding has 50'):
        get_model('bert_2_16_4_nlptest', pretrained=str(tmp_path / 'bert.params'), vocab=small)


def test_legacy_and_damaged_params_are_refused(tmp_path):
    reference, _ = gluonnlp_model()
    reference.collect_params().save(str(tmp_path / 'legacy.params'))
    with pytest.raises(ConversionError, match='legacy prefix-based names'):
        load_checkpoint(str(tmp_path / 'legacy.params'), num_heads=4)
    reference.save_parameters(str(tmp_path / 'bert.params'))
    data = (tmp_path / 'bert.params').read_bytes()
    (tmp_path / 'cut.params').write_bytes(data[:len(data) // 2])
    with pytest.raises(ConversionError, match='truncated or not an MXNet .params file'):
        load_checkpoint(str(tmp_path / 'cut.params'), num_heads=4)


def test_own_save_parameters_file_loads_back(tmp_path):
    model, vocab = get_model('bert_2_16_4_nlptest', pretrained=False, vocab=BERTVocab(
        ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + [f'w{i}' for i in range(45)]),
        dropout=0.0)
    model.save_parameters(str(tmp_path / 'mine.params'))
    again, _ = get_model('bert_2_16_4_nlptest', pretrained=str(tmp_path / 'mine.params'),
                         vocab=vocab, dropout=0.0)
    for name, param in model._collect_params_with_prefix().items():
        np.testing.assert_array_equal(again._collect_params_with_prefix()[name].data().asnumpy(),
                                      param.data().asnumpy())


def gluonnlp_classifier(tmp_path, num_classes=2, dropout=0.1):
    """GluonNLP 0.10's own BERTClassifier, as its finetune_classifier.py builds it (a pooler-only
    backbone, dropout 0.1 before the output Dense), saved with save_parameters beside its
    vocabulary JSON -> (reference, params path, vocab JSON path)."""
    import gluonnlp as nlp
    bert, nlp_vocab = gluonnlp_model(use_pooler=True, use_decoder=False, use_classifier=False)
    reference = nlp.model.BERTClassifier(bert, num_classes=num_classes, dropout=dropout)
    reference.classifier.initialize(init=mx.init.Normal(0.5))
    reference.hybridize()
    ids, types, lengths, _ = batch(len(nlp_vocab))
    reference(ids, types, lengths)
    reference.save_parameters(str(tmp_path / 'model_bert_SST_2.params'))
    (tmp_path / 'vocab.json').write_text(nlp_vocab.to_json(), encoding='utf-8')
    return reference, str(tmp_path / 'model_bert_SST_2.params'), str(tmp_path / 'vocab.json')


def test_finetuned_gluonnlp_classifier_loads_into_bert_classifier(tmp_path):
    reference, params, vocab_json = gluonnlp_classifier(tmp_path)
    assert {'classifier.1.weight', 'classifier.1.bias'} <= set(mx.nd.load(params))
    ours = gluonbert.from_pretrained(params, model='bert_2_16_4_nlptest', vocab=vocab_json)
    assert type(ours) is gluonbert.BERTClassifier and ours.bert.use_pooler
    assert ours.pretrained_info.vocab == BERTVocab.from_json(vocab_json)
    ids, types, lengths, _ = batch(len(ours.pretrained_info.vocab))
    expected = reference(ids, types, lengths).asnumpy()
    assert np.abs(expected[:, 0] - expected[:, 1]).max() > 0.1  # a real signal, not zeros
    np.testing.assert_allclose(ours(ids, types, lengths).asnumpy(), expected, atol=1e-5, rtol=0)
    # The same file through get_model gives the backbone only, and says so.
    with pytest.warns(UserWarning, match=r'fine-tuned sequence_classification head \(2 outputs\)'
                                         r', which is dropped.*gluonbert\.from_pretrained'):
        backbone, _ = get_model('bert_2_16_4_nlptest', pretrained=params,
                                vocab=BERTVocab.from_json(vocab_json))
    np.testing.assert_array_equal(backbone.pooler.dense.weight.data().asnumpy(),
                                  ours.bert.pooler.dense.weight.data().asnumpy())
    # A .params file carries no shape: both are required, and named.
    with pytest.raises(ValueError, match=r"carries no configuration: give model='<registered"):
        gluonbert.from_pretrained(params, vocab=vocab_json)


def test_finetuned_gluonnlp_regression_loads_into_bert_regression(tmp_path):
    # GluonNLP's BERTRegression (in its bert scripts, not the package) names its HybridSequential
    # `regression`; a one-output classifier renamed so gives exactly its file.
    reference, params, vocab_json = gluonnlp_classifier(tmp_path, num_classes=1, dropout=0.0)
    arrays = mx.nd.load(params)
    assert {'classifier.0.weight', 'classifier.0.bias'} <= set(arrays)
    mx.nd.save(params, {name.replace('classifier.0.', 'regression.0.'): value
                        for name, value in arrays.items()})
    ours = gluonbert.from_pretrained(params, model='bert_2_16_4_nlptest', vocab=vocab_json)
    assert type(ours) is gluonbert.BERTRegression
    ids, types, lengths, _ = batch(len(ours.pretrained_info.vocab))
    np.testing.assert_allclose(ours(ids, types, lengths).asnumpy(),
                               reference(ids, types, lengths).asnumpy(), atol=1e-5, rtol=0)


def test_a_task_file_with_a_foreign_head_is_refused(tmp_path):
    _, params, vocab_json = gluonnlp_classifier(tmp_path)
    arrays = mx.nd.load(params)
    arrays['span.weight'] = arrays.pop('classifier.1.weight')
    mx.nd.save(params, arrays)
    with pytest.raises(ConversionError, match=r'needs one output Dense.*found classifier.1.bias, '
                                              r'span.weight'):
        gluonbert.from_pretrained(params, model='bert_2_16_4_nlptest', vocab=vocab_json)
