"""GluonNLP's output options: every layer's attention maps and hidden states, no segment
embedding, and get_model's loading options (pretrained_allow_missing, ignore_extra)."""
import json
import warnings

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import BERTClassifier, export_model, get_model, import_model
from gluonbert.convert import ConversionError
from gluonbert.convert.hf import read_hf_checkpoint
from gluonbert.convert.layout import model_from_checkpoint
from gluonbert.model import BERTEncoder, BERTModel
from gluonbert.registry import PretrainedMismatchError
from checkpoint_helpers import (LENGTHS, MASKED, assert_valid_close, batch_arrays, hf_forward, nd,
                                random_hf_model, write_vocab)
from conftest import TINY, as_list, random_batch

LAYERS, HEADS, UNITS, BATCH, SEQ = TINY['num_layers'], TINY['num_heads'], TINY['units'], 3, 10


def flat(outputs):
    """Nested model outputs -> flat list of numpy arrays, in order."""
    if isinstance(outputs, mx.nd.NDArray):
        return [outputs.asnumpy()]
    return [array for item in outputs for array in flat(item)]


def model_with(params_from=None, use_pooler=True, use_decoder=True, use_classifier=True,
               **options):
    """A tiny BERTModel with output options; weights copied from `params_from` if given."""
    model = BERTModel(BERTEncoder(**TINY, **options), use_pooler=use_pooler,
                      use_decoder=use_decoder, use_classifier=use_classifier)
    model.initialize()
    if params_from is not None:
        source = params_from._collect_params_with_prefix()
        for name, param in model._collect_params_with_prefix().items():
            param.set_data(source[name].data())
    return model


def masked():
    return mx.nd.array([[1, 2], [0, 5], [3, 3]])


# (options, heads) -> expected shapes in GluonNLP 0.10's order: encodings, attention maps, pooled,
# NSP logits, MLM logits.
CASES = [
    (dict(output_attention=True), (False, False, False),
     [(BATCH, SEQ, UNITS)] + [(BATCH, HEADS, SEQ, SEQ)] * LAYERS),
    (dict(output_all_encodings=True), (True, False, False),
     [(BATCH, SEQ, UNITS)] * LAYERS + [(BATCH, UNITS)]),
    (dict(output_attention=True, output_all_encodings=True), (False, False, False),
     [(BATCH, SEQ, UNITS)] * LAYERS + [(BATCH, HEADS, SEQ, SEQ)] * LAYERS),
    (dict(output_attention=True, output_all_encodings=True), (True, True, True),
     [(BATCH, SEQ, UNITS)] * LAYERS + [(BATCH, HEADS, SEQ, SEQ)] * LAYERS +
     [(BATCH, UNITS), (BATCH, 2), (BATCH, 2, TINY['vocab_size'])]),
]


@pytest.mark.parametrize('options,heads,shapes', CASES)
@pytest.mark.parametrize('with_lengths', [True, False])
def test_outputs_follow_gluonnlp_order_and_heads_read_the_last_layer(options, heads, shapes,
                                                                      with_lengths):
    plain = model_with(None, *heads)
    model = model_with(plain, *heads, **options)
    ids, types, lengths = random_batch(lengths=[10, 7, 4])
    lengths = lengths if with_lengths else None
    extra = [masked()] if heads[1] else []
    imperative = model(ids, types, lengths, *extra)
    if options.get('output_all_encodings'):  # nested as in GluonNLP: the list comes first
        assert isinstance(imperative[0] if isinstance(imperative, tuple) else imperative, list)
    got = flat(imperative)
    assert [g.shape for g in got] == shapes
    model.hybridize(static_alloc=True)
    for a, b in zip(flat(model(ids, types, lengths, *extra)), got):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # The last encoding and every head equal the model without the options (same weights).
    expected = as_list(plain(ids, types, lengths, *extra))
    np.testing.assert_allclose(got[LAYERS - 1 if options.get('output_all_encodings') else 0],
                               expected[0], atol=1e-6, rtol=0)
    for g, e in zip(got[len(got) - len(expected) + 1:], expected[1:]):
        np.testing.assert_allclose(g, e, atol=1e-6, rtol=0)


@pytest.mark.parametrize('hybridize', [False, True])
def test_encoder_alone_returns_encodings_and_attentions(hybridize):
    encoder = BERTEncoder(**TINY, output_all_encodings=True)
    encoder.initialize()
    plain = BERTEncoder(**TINY, params=encoder.collect_params())  # the same weights
    if hybridize:
        encoder.hybridize()
    ids, types, lengths = random_batch()
    encodings, attentions = encoder(ids, types, lengths)
    assert attentions == [] and [e.shape for e in encodings] == [(BATCH, SEQ, UNITS)] * LAYERS
    np.testing.assert_allclose(encodings[-1].asnumpy(), plain(ids, types, lengths).asnumpy(),
                               atol=1e-6, rtol=0)


def test_attention_rows_sum_to_one_and_padding_keys_get_no_weight():
    model = model_with(None, False, False, False, output_attention=True,
                       output_all_encodings=True)
    ids, types, lengths = random_batch(lengths=[10, 7, 4])
    outputs = model(ids, types, lengths)
    encodings, maps = [[a.asnumpy() for a in group] for group in outputs]
    for layer in maps:
        np.testing.assert_allclose(layer.sum(axis=-1), 1.0, atol=1e-5, rtol=0)
        for row, length in enumerate([10, 7, 4]):
            assert not layer[row, :, :, length:].any()  # exp(-1e4) is exactly 0 in float32
            assert layer[row, :, :, :length].min() > 0
    for layer in encodings:  # every layer's output is zeroed beyond the valid length
        for row, length in enumerate([10, 7, 4]):
            assert not layer[row, length:].any() and np.abs(layer[row, :length]).min() > 0
    assert not np.allclose(encodings[0], encodings[1])  # each layer its own, not one repeated


def test_options_off_add_nothing_to_the_graph(tmp_path):
    ids, types, lengths = random_batch()
    nodes = {}
    for name, options in (('plain', {}), ('maps', dict(output_attention=True))):
        model = model_with(None, False, False, False, **options)
        symbol_file, _ = export_model(model, str(tmp_path / name), [ids, types, lengths])
        with open(symbol_file, encoding='utf-8') as f:
            nodes[name] = [n['op'] for n in json.load(f)['nodes']]
    # The maps cost one reshape per layer; without them the graph has none of those nodes (and
    # is byte-identical to the graph before the options existed, checked by hand).
    assert len(nodes['maps']) - len(nodes['plain']) == LAYERS
    assert nodes['maps'].count('Reshape') - nodes['plain'].count('Reshape') == LAYERS


def test_export_round_trip_keeps_every_output(tmp_path):
    model = model_with(None, True, True, True, output_attention=True, output_all_encodings=True)

    def inputs(seq_len):
        ids, types, lengths = random_batch(seq_len=seq_len, lengths=[seq_len, seq_len - 2, 3],
                                           seed=seq_len)
        return [ids, types, lengths, masked()]

    expected = {n: flat(model(*inputs(n))) for n in (8, 20)}
    prefix = str(tmp_path / 'model')
    export_model(model, prefix, inputs(8))
    imported = import_model(prefix, num_inputs=4)
    for seq_len in (8, 20):
        got = as_list(imported(*inputs(seq_len)))
        assert [g.shape for g in got] == [e.shape for e in expected[seq_len]]
        assert len(got) == 2 * LAYERS + 3
        for g, e in zip(got, expected[seq_len]):
            np.testing.assert_allclose(g, e, atol=1e-6, rtol=0)


def test_maps_and_encodings_equal_transformers_and_the_feature_recipe(tmp_path):
    transformers = pytest.importorskip('transformers')
    reference = random_hf_model(transformers.BertModel, seed=11, num_hidden_layers=4,
                                attn_implementation='eager')
    reference.save_pretrained(str(tmp_path / 'hf'))
    write_vocab(str(tmp_path / 'hf'))
    gluonbert.register_model('bert_4_16_4_outtest', num_layers=4, units=16, num_heads=4,
                             hidden_size=32, max_length=24)
    model, _ = get_model('bert_4_16_4_outtest', pretrained=str(tmp_path / 'hf'), dropout=0.0,
                         output_attention=True, output_all_encodings=True)
    ids, types, lengths = batch_arrays(seed=11)
    expected = hf_forward(reference, ids, types, lengths, output_attentions=True,
                          output_hidden_states=True)
    encodings, maps, pooled = model(*nd(ids, types, lengths))
    assert len(encodings) == len(maps) == 4
    for ours, theirs in zip(encodings, expected.hidden_states[1:]):  # HF's [0] is the embedding
        assert_valid_close(ours.asnumpy(), theirs.numpy(), LENGTHS)
    for ours, theirs in zip(maps, expected.attentions):  # every row, padded queries included
        np.testing.assert_allclose(ours.asnumpy(), theirs.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled.asnumpy(), expected.pooler_output.numpy(), atol=1e-4,
                               rtol=0)
    # BERT paper's feature-based recipe: the sum of the last four layers' hidden states.
    features = sum(e.asnumpy() for e in encodings[-4:])
    assert_valid_close(features, sum(h.numpy() for h in expected.hidden_states[-4:]), LENGTHS,
                       atol=4e-4)


def test_without_token_type_embed_the_segment_ids_are_ignored():
    plain = model_with(None, True, False, False)
    model = model_with(None, True, False, False, use_token_type_embed=False)
    names = set(model._collect_params_with_prefix())
    assert names == set(plain._collect_params_with_prefix()) - {'encoder.token_type_embed.weight'}
    for name, param in plain._collect_params_with_prefix().items():
        if name in names:
            param.set_data(model._collect_params_with_prefix()[name].data())
        else:  # a zero segment table adds nothing: the same computation as no table
            param.set_data(mx.nd.zeros(param.shape))
    ids, types, lengths = random_batch()
    expected = as_list(plain(ids, types, lengths))
    for segments in (types, mx.nd.ones_like(types) * 7, None):  # any ids, even out of range
        for got, want in zip(as_list(model(ids, segments, lengths)), expected):
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    model.hybridize()
    classifier = BERTClassifier(model_with(model, True, False, False, use_token_type_embed=False))
    classifier.initialize_head()
    classifier.hybridize()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "input not used" warning from the hybridized graphs
        np.testing.assert_allclose(as_list(model(ids, types, lengths))[0], expected[0],
                                   atol=1e-6, rtol=0)
        assert classifier(ids, types, lengths).shape == (BATCH, 2)


def test_task_heads_refuse_a_backbone_with_output_options():
    bert = model_with(None, True, False, False, output_attention=True)
    with pytest.raises(ValueError, match=r'BERTClassifier reads the last layer only; build the '
                                         r'backbone without output_attention=True'):
        BERTClassifier(bert, num_classes=2)


@pytest.fixture
def hf_folder(tmp_path):
    """A 4-layer transformers BertModel of TINY's width saved with vocab.txt -> (model, path)."""
    transformers = pytest.importorskip('transformers')
    reference = random_hf_model(transformers.BertModel, seed=13, num_hidden_layers=4)
    reference.save_pretrained(str(tmp_path / 'hf'))
    write_vocab(str(tmp_path / 'hf'))
    gluonbert.register_model('bert_4_16_4_outtest', num_layers=4, units=16, num_heads=4,
                             hidden_size=32, max_length=24)
    return reference, str(tmp_path / 'hf')


def test_missing_heads_are_refused_or_left_uninitialized_as_in_gluonnlp(hf_folder):
    _, path = hf_folder
    for error in (AssertionError, ConversionError):  # GluonNLP raised AssertionError
        with pytest.raises(error, match=r'missing from the checkpoint.*decoder\.bias(.|\n)*'
                                        r'pretrained_allow_missing=True leaves missing'):
            get_model('bert_4_16_4_outtest', pretrained=path, use_decoder=True)
    with pytest.warns(UserWarning, match=r'has no decoder\.bias, .*left uninitialized '
                                         r'\(pretrained_allow_missing=True\); call '
                                         r'model.initialize\(\)'):
        model, _ = get_model('bert_4_16_4_outtest', pretrained=path, use_decoder=True,
                             pretrained_allow_missing=True)
    loaded = model.encoder.word_embed.weight.data().asnumpy()
    ids, types, lengths = nd(*batch_arrays(seed=13))
    with pytest.raises(RuntimeError, match='not been initialized'):  # as GluonNLP's test expects
        model(ids, types, lengths, nd(np.array(MASKED))[0])
    with warnings.catch_warnings():  # MXNet warns for each parameter already initialized
        warnings.simplefilter('ignore')
        model.initialize()  # the missing parameters only: the loaded ones stay
    np.testing.assert_array_equal(model.encoder.word_embed.weight.data().asnumpy(), loaded)
    assert model(ids, types, lengths, nd(np.array(MASKED))[0])[2].shape == (3, 3, 50)


def test_ignore_extra_loads_the_first_layers_into_a_smaller_model(hf_folder):
    reference, path = hf_folder
    with pytest.raises(PretrainedMismatchError,
                       match="num_layers: the checkpoint's configuration says 4, the model has 2"):
        get_model('bert_4_16_4_outtest', pretrained=path, hparam_allow_override=True,
                  num_layers=2)
    model, _ = get_model('bert_4_16_4_outtest', pretrained=path, hparam_allow_override=True,
                         num_layers=2, ignore_extra=True, dropout=0.0)
    assert len(model.encoder.layers) == 2
    ids, types, lengths = batch_arrays(seed=13)
    second = hf_forward(reference, ids, types, lengths, output_hidden_states=True)
    sequence, _ = model(*nd(ids, types, lengths))
    assert_valid_close(sequence.asnumpy(), second.hidden_states[2].numpy(), LENGTHS)


def test_no_segment_embedding_drops_the_checkpoint_table(hf_folder):
    _, path = hf_folder
    model, _ = get_model('bert_4_16_4_outtest', pretrained=path, use_token_type_embed=False)
    assert 'encoder.token_type_embed.weight' not in model._collect_params_with_prefix()
    checkpoint = read_hf_checkpoint(path)
    reference = model_from_checkpoint(checkpoint, dropout=0.0)
    np.testing.assert_array_equal(model.encoder.word_embed.weight.data().asnumpy(),
                                  reference.encoder.word_embed.weight.data().asnumpy())


def test_a_model_without_segment_table_saves_to_hf_with_a_zero_one(tmp_path):
    """HF always has a segment table: a zero one keeps the outputs (a missing one would be
    filled with random values by transformers)."""
    transformers = pytest.importorskip('transformers')
    model = model_with(None, True, False, False, use_token_type_embed=False)
    vocab = gluonbert.BERTVocab(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] +
                                [f'w{i}' for i in range(TINY['vocab_size'] - 5)])
    folder = str(tmp_path / 'hf')
    gluonbert.convert.hf.save_hf_checkpoint(model, vocab, folder)
    hf = transformers.BertModel.from_pretrained(folder).eval()
    ids, types, lengths = (a.asnumpy().astype('int64') for a in random_batch())
    ours = as_list(model(*nd(ids, types, lengths)))[0]
    theirs = hf_forward(hf, ids, types, lengths).last_hidden_state.numpy()
    assert_valid_close(ours, theirs, lengths, atol=1e-5)
