"""The math referee: gluonbert vs gluonnlp==0.10.0's BERTModel on the same random weights."""
import mxnet as mx
import numpy as np
import pytest

from gluonbert.convert import ConversionError, assign_parameters
from gluonbert.convert.gluonnlp import convert_gluonnlp_params, to_gluonnlp_params
from gluonbert.model import BERTEncoder, BERTModel
from conftest import as_list, random_batch

nlp_bert = pytest.importorskip('gluonnlp.model.bert')

CONFIGS = {
    'tiny': dict(vocab_size=50, units=16, hidden_size=32, num_heads=4, num_layers=2,
                 max_length=24),
    'base_width': dict(vocab_size=120, units=768, hidden_size=3072, num_heads=12, num_layers=1,
                       max_length=32),
}


def gluonnlp_model(cfg, use_pooler, use_decoder, use_classifier):
    """gluonnlp's BERTModel with every parameter (biases and LayerNorms too) random."""
    encoder = nlp_bert.BERTEncoder(num_layers=cfg['num_layers'], units=cfg['units'],
                                   hidden_size=cfg['hidden_size'], max_length=cfg['max_length'],
                                   num_heads=cfg['num_heads'], dropout=0.0)
    model = nlp_bert.BERTModel(encoder, vocab_size=cfg['vocab_size'], token_type_vocab_size=2,
                               units=cfg['units'], embed_size=cfg['units'],
                               use_pooler=use_pooler, use_decoder=use_decoder,
                               use_classifier=use_classifier)
    model.initialize(init=mx.init.Normal(0.02))
    ids, types, lengths = random_batch(vocab_size=cfg['vocab_size'])
    model(ids, types, lengths, mx.nd.zeros((3, 1)) if use_decoder else None)  # finish shapes
    rng = np.random.RandomState(1)
    for param in model.collect_params().values():
        param.set_data(rng.normal(0, 0.3, size=param.shape).astype('float32'))
    return model


@pytest.mark.parametrize('name', sorted(CONFIGS))
@pytest.mark.parametrize('heads', [(True, True, True), (True, False, False),
                                   (False, False, False)])
def test_outputs_match_gluonnlp(name, heads):
    cfg = CONFIGS[name]
    reference = gluonnlp_model(cfg, *heads)
    ours = BERTModel(BERTEncoder(dropout=0.0, **cfg), *heads)
    ours.initialize()
    arrays = {k: v.data().asnumpy() for k, v in reference._collect_params_with_prefix().items()}
    assign_parameters(ours, convert_gluonnlp_params(arrays, cfg['num_heads']))

    ids, types, lengths = random_batch(vocab_size=cfg['vocab_size'], lengths=[10, 6, 2])
    masked = mx.nd.array([[1, 0, 9], [5, 2, 2], [0, 1, 7]]) if heads[1] else None
    expected = as_list(reference(ids, types, lengths, masked))
    for hybridize in (False, True):
        if hybridize:
            ours.hybridize(static_alloc=True)
        got = as_list(ours(ids, types, lengths, masked))
        assert len(got) == len(expected) == 1 + heads[0] + heads[1] + heads[2]
        for g, e in zip(got, expected):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-4)


def test_converter_reports_untied_decoder_weight():
    cfg = CONFIGS['tiny']
    arrays = {k: v.data().asnumpy() for k, v in
              gluonnlp_model(cfg, True, True, True)._collect_params_with_prefix().items()}
    arrays['decoder.3.weight'] = arrays['decoder.3.weight'] + 1
    with pytest.raises(ValueError, match='decoder.3.weight differs from word_embed.0.weight'):
        convert_gluonnlp_params(arrays, cfg['num_heads'])


def arrays_of(block):
    """Structural name -> numpy array of every parameter of `block`."""
    return {k: v.data().asnumpy() for k, v in block._collect_params_with_prefix().items()}


@pytest.mark.parametrize('heads', [(True, True, True), (True, False, False),
                                   (False, False, False)])
def test_to_gluonnlp_params_inverts_the_converter(heads):
    cfg = CONFIGS['tiny']
    theirs = arrays_of(gluonnlp_model(cfg, *heads))
    ours = BERTModel(BERTEncoder(dropout=0.0, **cfg), *heads)
    ours.initialize()
    assign_parameters(ours, convert_gluonnlp_params(theirs, cfg['num_heads']))
    back = to_gluonnlp_params(arrays_of(ours), cfg['num_heads'])
    assert sorted(back) == sorted(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_to_gluonnlp_params_rejects_unknown_names():
    with pytest.raises(ConversionError, match='no GluonNLP name for gluonbert parameter task.w'):
        to_gluonnlp_params({'task.w': np.zeros(2)}, num_heads=4)
