"""BERT blocks: head combinations, hybridization, padding invariance, weight tying, bad input."""
import itertools
import math

import mxnet as mx
import numpy as np
import pytest

from gluonbert.model import (GELU, BERTClassifier, BERTEncoder, BERTForMultipleChoice, BERTForQA,
                             BERTForTokenClassification, BERTModel, BERTRegression,
                             interleave_qkv, split_qkv)
from gluonbert.model.task_heads import mean_over_valid
from conftest import TINY, as_list, random_batch, tiny_model

HEAD_COMBINATIONS = [(p, d, c) for p, d, c in itertools.product([True, False], repeat=3)
                     if p or not c]  # the NSP classifier needs the pooler


@pytest.mark.parametrize('use_pooler,use_decoder,use_classifier', HEAD_COMBINATIONS)
def test_head_combinations_imperative_equals_hybridized(use_pooler, use_decoder, use_classifier):
    model = tiny_model(use_pooler, use_decoder, use_classifier)
    ids, types, lengths = random_batch()
    masked = mx.nd.array([[1, 2], [0, 5], [3, 3]]) if use_decoder else None
    imperative = as_list(model(ids, types, lengths, masked))
    model.hybridize(static_alloc=True)
    hybridized = as_list(model(ids, types, lengths, masked))
    expected_shapes = [(3, 10, 16)] + [(3, 16)] * use_pooler + [(3, 2)] * use_classifier + \
        [(3, 2, 50)] * use_decoder
    assert [o.shape for o in imperative] == expected_shapes
    for a, b in zip(imperative, hybridized):
        assert np.abs(a).max() > 1e-3  # real values, not an all-zero pass-through
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_padding_invariance():
    model = tiny_model(use_decoder=False, use_classifier=False)
    ids, types, lengths = random_batch(batch=3, seq_len=10, lengths=[10, 7, 4])
    sequence, pooled = as_list(model(ids, types, lengths))
    for row, length in enumerate([10, 7, 4]):
        alone_seq, alone_pooled = as_list(model(ids[row:row + 1, :length],
                                                types[row:row + 1, :length],
                                                mx.nd.array([length])))
        np.testing.assert_allclose(sequence[row, :length], alone_seq[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(pooled[row], alone_pooled[0], atol=1e-5, rtol=0)
        assert not sequence[row, length:].any()  # padded positions are zeroed


def test_padding_content_is_ignored():
    model = tiny_model(use_decoder=False, use_classifier=False)
    ids, types, lengths = random_batch(lengths=[10, 6, 3])
    noisy = ids.copy()
    noisy[1, 6:] = 17
    noisy[2, 3:] = 42
    for a, b in zip(as_list(model(ids, types, lengths)), as_list(model(noisy, types, lengths))):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_attention_uses_context():
    """Changing one token changes the other tokens' outputs: attention mixes positions."""
    model = tiny_model(use_decoder=False, use_classifier=False)
    ids, types, lengths = random_batch(batch=1, seq_len=6, lengths=[6])
    changed = ids.copy()
    changed[0, 5] = (ids[0, 5].asscalar() + 1) % TINY['vocab_size']
    before = as_list(model(ids, types, lengths))[0]
    after = as_list(model(changed, types, lengths))[0]
    assert np.abs(before[0, :5] - after[0, :5]).max() > 1e-4


def test_no_valid_length_equals_full_length():
    model = tiny_model(use_decoder=False, use_classifier=False)
    ids, types, _ = random_batch(batch=2, lengths=[10, 10])
    for a, b in zip(as_list(model(ids, types)), as_list(model(ids, types, mx.nd.array([10, 10])))):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_mlm_decoder_is_tied_to_word_embedding(tmp_path):
    model = tiny_model()
    assert model.decoder.embed_weight is model.encoder.word_embed.weight
    ids, types, lengths = random_batch()
    masked = mx.nd.array([[0, 1], [2, 3], [1, 1]])
    before = model(ids, types, lengths, masked)[-1].asnumpy()
    weight = model.encoder.word_embed.weight
    weight.set_data(weight.data() * 2)
    after = model(ids, types, lengths, masked)[-1].asnumpy()
    assert np.abs(before - after).max() > 1e-3
    path = str(tmp_path / 'tiny.params')
    model.save_parameters(path)
    saved = mx.nd.load(path)
    assert 'decoder.embed_weight' not in saved and 'encoder.word_embed.weight' in saved
    reloaded = tiny_model()
    reloaded.load_parameters(path)
    np.testing.assert_array_equal(reloaded(ids, types, lengths, masked)[-1].asnumpy(), after)


def test_mlm_gathers_the_masked_positions():
    model = tiny_model(use_pooler=False, use_classifier=False)
    ids, types, lengths = random_batch()
    sequence, logits = model(ids, types, lengths, mx.nd.array([[4, 0], [2, 2], [1, 3]]))
    decoder = model.decoder
    hidden = decoder.layer_norm(decoder.activation(decoder.transform(sequence[1, 2])))
    expected = mx.nd.dot(hidden, decoder.embed_weight.data(), transpose_b=True) + \
        decoder.bias.data()
    np.testing.assert_allclose(logits[1, 0].asnumpy(), expected.asnumpy(), atol=1e-5)
    np.testing.assert_allclose(logits[1, 0].asnumpy(), logits[1, 1].asnumpy(), atol=0)


@pytest.mark.parametrize('head_cls,kwargs,shapes,uses_pooler', [
    (BERTClassifier, dict(num_classes=3, dropout=0.1), [(3, 3)], True),
    (BERTRegression, dict(), [(3, 1)], True),
    (BERTForTokenClassification, dict(num_classes=5), [(3, 10, 5)], False),
    (BERTForQA, dict(), [(3, 10), (3, 10)], False),
])
def test_task_heads(head_cls, kwargs, shapes, uses_pooler):
    bert = tiny_model(use_pooler=uses_pooler, use_decoder=False, use_classifier=False)
    head = head_cls(bert, **kwargs)
    head.initialize_head()
    ids, types, lengths = random_batch()
    imperative = as_list(head(ids, types, lengths))
    head.hybridize()
    hybridized = as_list(head(ids, types, lengths))
    assert [o.shape for o in imperative] == shapes
    for a, b in zip(imperative, hybridized):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    if head_cls is BERTForQA:
        assert (imperative[0][2, 4:] == -1e4).all() and (imperative[0][2, :4] > -1e3).all()


def test_multiple_choice_scores_each_choice_like_the_classifier_path():
    bert = tiny_model(use_decoder=False, use_classifier=False)
    head = BERTForMultipleChoice(bert)
    head.initialize_head()
    ids, types, lengths = random_batch(batch=4, lengths=[10, 8, 6, 4])
    scores = head(ids.reshape((2, 2, 10)), types.reshape((2, 2, 10)), lengths.reshape((2, 2)))
    assert scores.shape == (2, 2)
    pooled = bert(ids, types, lengths)[1]
    expected = head.scorer(pooled).reshape((2, 2))
    np.testing.assert_allclose(scores.asnumpy(), expected.asnumpy(), atol=1e-6)
    head.hybridize()
    hybrid = head(ids.reshape((2, 2, 10)), types.reshape((2, 2, 10)), lengths.reshape((2, 2)))
    np.testing.assert_allclose(hybrid.asnumpy(), scores.asnumpy(), atol=1e-6)


def test_mean_pooling_classifier_averages_the_valid_tokens(tmp_path):
    bert = tiny_model(use_pooler=False, use_decoder=False, use_classifier=False)
    head = BERTClassifier(bert, num_classes=3, pooling='mean')
    head.initialize_head()
    ids, types, lengths = random_batch(lengths=[10, 7, 4])
    logits = head(ids, types, lengths).asnumpy()
    sequence = bert(ids, types, lengths).asnumpy()
    means = np.stack([sequence[row, :n].mean(axis=0) for row, n in enumerate([10, 7, 4])])
    weight, bias = head.classifier.weight.data().asnumpy(), head.classifier.bias.data().asnumpy()
    np.testing.assert_allclose(logits, means @ weight.T + bias, atol=1e-5)
    padded = ids.copy()
    padded[2, 4:] = 5  # what sits beyond valid_length must not matter
    np.testing.assert_allclose(head(padded, types, lengths).asnumpy(), logits, atol=1e-6)
    head.hybridize()
    np.testing.assert_allclose(head(ids, types, lengths).asnumpy(), logits, atol=1e-6)
    head.export(str(tmp_path / 'mean'))
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / 'mean-symbol.json'),
                                          ['data0', 'data1', 'data2'],
                                          str(tmp_path / 'mean-0000.params'))
    np.testing.assert_allclose(loaded(ids, types, lengths).asnumpy(), logits, atol=1e-6)


def test_mean_over_valid_ignores_whatever_sits_in_the_padding():
    rng = np.random.RandomState(0)
    sequence = rng.normal(size=(3, 5, 4)).astype('float32')  # padding not zero on purpose
    lengths = np.array([5, 2, 1], dtype='int32')
    pooled = mean_over_valid(mx.nd, mx.nd.array(sequence), mx.nd.array(lengths, dtype='int32'))
    expected = np.stack([sequence[row, :n].mean(axis=0) for row, n in enumerate(lengths)])
    np.testing.assert_allclose(pooled.asnumpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mean_over_valid(mx.nd, mx.nd.array(sequence)).asnumpy(),
                               sequence.mean(axis=1), rtol=1e-6, atol=1e-6)


def test_multiple_choice_with_mean_pooling_pools_each_choice_over_its_own_length():
    bert = tiny_model(use_pooler=False, use_decoder=False, use_classifier=False)
    head = BERTForMultipleChoice(bert, pooling='mean')
    head.initialize_head()
    ids, types, lengths = random_batch(batch=4, lengths=[10, 8, 6, 4])
    scores = head(ids.reshape((2, 2, 10)), types.reshape((2, 2, 10)), lengths.reshape((2, 2)))
    sequence = bert(ids, types, lengths).asnumpy()
    means = np.stack([sequence[row, :n].mean(axis=0) for row, n in enumerate([10, 8, 6, 4])])
    expected = means @ head.scorer.weight.data().asnumpy().T + head.scorer.bias.data().asnumpy()
    np.testing.assert_allclose(scores.asnumpy(), expected.reshape((2, 2)), atol=1e-5)
    head.hybridize()
    hybrid = head(ids.reshape((2, 2, 10)), types.reshape((2, 2, 10)), lengths.reshape((2, 2)))
    np.testing.assert_allclose(hybrid.asnumpy(), scores.asnumpy(), atol=1e-6)


def test_mean_pooling_keeps_the_hidden_states_dtype():
    pooled = mean_over_valid(mx.sym, mx.sym.var('sequence'), mx.sym.var('length'))
    _, out_types, _ = pooled.infer_type(sequence=np.float16, length=np.int32)
    assert out_types == [np.float16]


def test_pooling_choice_is_checked():
    no_pooler = tiny_model(use_pooler=False, use_decoder=False, use_classifier=False)
    with pytest.raises(ValueError, match="pooling must be one of \\('cls', 'mean'\\); got 'max'"):
        BERTClassifier(no_pooler, pooling='max')
    with pytest.raises(ValueError, match=r"BERTRegression \(pooling='mean'\) trains the encoder "
                                         r"only.*use_pooler=False.*or pass pooling='cls'"):
        BERTRegression(tiny_model(use_decoder=False, use_classifier=False), pooling='mean')
    with pytest.raises(ValueError, match="use_pooler=True.*or pass pooling='mean'"):
        BERTClassifier(no_pooler)
    with pytest.raises(TypeError, match='BERTForQA scores every token; it takes no pooling'):
        BERTForQA(no_pooler, pooling='mean')
    regression = BERTRegression(no_pooler, pooling='mean')
    regression.initialize_head()
    assert regression(*random_batch()).shape == (3, 1)


def test_heads_reject_a_backbone_with_unused_parts():
    with pytest.raises(ValueError, match='use_decoder=False, use_classifier=False'):
        BERTClassifier(tiny_model())
    with pytest.raises(ValueError, match='use_pooler=False'):
        BERTForQA(tiny_model(use_decoder=False, use_classifier=False))
    with pytest.raises(ValueError, match='use_pooler=True'):
        BERTClassifier(tiny_model(use_pooler=False, use_decoder=False, use_classifier=False))


def test_model_vocab_tuple_gets_a_clear_type_error():
    bert = tiny_model(use_decoder=False, use_classifier=False)
    with pytest.raises(TypeError, match=r'unpack it first: `bert, vocab = get_model'):
        BERTClassifier((bert, object()))
    with pytest.raises(TypeError, match='BERTModel'):
        BERTClassifier(bert.encoder)


@pytest.mark.parametrize('overrides,message', [
    (dict(units=6, num_heads=12), r'units=6 is not divisible by num_heads=12.*\[1, 2, 3, 6\]'),
    (dict(units=0), r'units=0 must be a positive integer'),
    (dict(num_layers=-1), r'num_layers=-1 must be a positive integer'),
    (dict(max_length=2.5), r'max_length=2.5 must be a positive integer'),
    (dict(vocab_size=0), r'vocab_size=0 must be a positive integer'),
    (dict(activation='swish'), r"activation='swish' is unknown; choose one of gelu, gelu_tanh"),
    (dict(dropout=1.5), r'dropout=1.5 must be in \[0, 1\)'),
    (dict(layer_norm_eps=0), r'layer_norm_eps=0 must be positive'),
])
def test_bad_configurations_fail_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        BERTEncoder(**dict(TINY, **overrides))


def test_classifier_needs_pooler():
    with pytest.raises(ValueError, match='use_classifier=True needs use_pooler=True'):
        BERTModel(BERTEncoder(**TINY), use_pooler=False, use_classifier=True)


def test_bad_inputs_get_clear_errors():
    model = tiny_model(use_decoder=False, use_classifier=False)
    ids, types, lengths = random_batch()
    too_long = mx.nd.zeros((1, TINY['max_length'] + 1))
    with pytest.raises(ValueError, match=r'sequence length 25 is longer than the position table '
                                         r'of this model \(max_length=24\)'):
        model(too_long, too_long)
    with pytest.raises(ValueError, match=r'input_ids holds 50 outside \[0, 49\]'):
        model(mx.nd.full((1, 4), 50), mx.nd.zeros((1, 4)))
    with pytest.raises(ValueError, match=r'token_types holds 2 outside \[0, 1\]'):
        model(ids, types * 2, lengths)
    with pytest.raises(ValueError, match='token_types has shape'):
        model(ids, types[:, :5], lengths)
    with pytest.raises(ValueError, match=r'valid_length holds 0 outside \[1, 10\]'):
        model(ids, types, mx.nd.array([3, 0, 2]))
    with pytest.raises(ValueError, match=r'valid_length must have shape \(batch,\)'):
        model(ids, types, mx.nd.array([3, 2]))
    with pytest.raises(ValueError, match=r'input_ids must have shape \(batch, seq_len\)'):
        model(ids.reshape((-1,)), types)
    with pytest.raises(ValueError, match='masked_positions given but the model has no MLM'):
        model(ids, types, lengths, mx.nd.zeros((3, 1)))
    with pytest.raises(ValueError, match='needs masked_positions'):
        tiny_model()(ids, types, lengths)
    with pytest.raises(ValueError, match=r'masked_positions must lie in \[0, seq_len=10\)'):
        tiny_model()(ids, types, lengths, mx.nd.array([[10], [0], [1]]))


def test_gelu_is_the_exact_erf_form():
    x = np.linspace(-4, 4, 41).astype('float32')
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(GELU()(mx.nd.array(x)).asnumpy(), exact, atol=1e-6)
    approx = GELU(approximate=True)(mx.nd.array(x)).asnumpy()
    assert 1e-5 < np.abs(approx - exact).max() < 1e-2  # the tanh form is close but not equal


def test_interleave_and_split_qkv_are_inverse():
    rng = np.random.RandomState(0)
    q, k, v = (rng.randn(12, 5) for _ in range(3))
    fused = interleave_qkv(q, k, v, num_heads=3)
    np.testing.assert_array_equal(fused[0:4], q[0:4])   # head 0: q rows, k rows, v rows
    np.testing.assert_array_equal(fused[4:8], k[0:4])
    np.testing.assert_array_equal(fused[12:16], q[4:8])  # head 1 starts after 3 * head_dim rows
    for a, b in zip(split_qkv(fused, 3), (q, k, v)):
        np.testing.assert_array_equal(a, b)


def test_initialize_head_keeps_the_backbone():
    bert = tiny_model(use_decoder=False, use_classifier=False)
    before = bert.encoder.word_embed.weight.data().asnumpy().copy()
    head = BERTClassifier(bert, num_classes=2)
    head.initialize_head()
    np.testing.assert_array_equal(bert.encoder.word_embed.weight.data().asnumpy(), before)
    weight = head.classifier.weight.data().asnumpy()
    assert weight.shape == (2, 16) and 0.005 < weight.std() < 0.05  # N(0, 0.02)


def test_encoder_called_directly_checks_its_inputs():
    encoder = tiny_model().encoder
    with pytest.raises(ValueError, match=r'input_ids holds 999 outside \[0, 49\]'):
        encoder(mx.nd.array([[1, 2, 3, 999]]))
    with pytest.raises(ValueError, match=r'valid_length holds 9 outside \[1, 4\]'):
        encoder(mx.nd.array([[1, 2, 3, 4]]), None, mx.nd.array([9]))
    assert encoder(mx.nd.array([[1, 2, 3, 4]])).shape == (1, 4, 16)


def test_initialize_head_follows_the_backbone_contexts():
    ctxs = [mx.cpu(0), mx.cpu(1)]
    bert = tiny_model(use_decoder=False, use_classifier=False)
    bert.collect_params().reset_ctx(ctxs)
    head = BERTClassifier(bert, num_classes=2)
    head.initialize_head()
    assert head.classifier.weight.list_ctx() == ctxs
    ids, types, lengths = random_batch()
    a = head(ids.as_in_context(ctxs[1]), types.as_in_context(ctxs[1]),
             lengths.as_in_context(ctxs[1]))
    np.testing.assert_allclose(a.asnumpy(), head(ids, types, lengths).asnumpy(), atol=1e-6)


def test_an_imperative_call_checks_its_inputs_once(monkeypatch):
    """Each check reads the inputs back to the host: a task head over a BERTModel over an
    encoder checks once per call, hybridized or not, and still refuses bad ids both ways."""
    from gluonbert.model import encoder as encoder_module
    calls = []
    real = encoder_module.check_inputs

    def counting(config, input_ids, *args):
        if isinstance(input_ids, mx.nd.NDArray):  # graph tracing passes symbols: no host read
            calls.append(input_ids.shape)
        return real(config, input_ids, *args)
    monkeypatch.setattr(encoder_module, 'check_inputs', counting)
    net = BERTClassifier(tiny_model(use_pooler=True, use_decoder=False, use_classifier=False), 2)
    net.initialize_head()
    ids, types, lengths = random_batch()
    for hybridized in (False, True):
        if hybridized:
            net.hybridize()
        calls.clear()
        net(ids, types, lengths)
        assert len(calls) == 1, (hybridized, len(calls))
        with pytest.raises(ValueError, match='input_ids holds'):
            net(ids + TINY['vocab_size'], types, lengths)
