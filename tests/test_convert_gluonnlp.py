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
        ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + ['w{}'.format(i) for i in range(45)]),
        dropout=0.0)
    model.save_parameters(str(tmp_path / 'mine.params'))
    again, _ = get_model('bert_2_16_4_nlptest', pretrained=str(tmp_path / 'mine.params'),
                         vocab=vocab, dropout=0.0)
    for name, param in model._collect_params_with_prefix().items():
        np.testing.assert_array_equal(again._collect_params_with_prefix()[name].data().asnumpy(),
                                      param.data().asnumpy())
