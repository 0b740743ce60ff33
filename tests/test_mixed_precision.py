"""Mixed-precision training on the CPU: AMP's rewrite over shared float32 weights, the on-device
dynamic loss scale (overflow skips the step, halves the scale), exact resume, clear errors.

MXNet 1.9.1 has no float16 FullyConnected on the CPU, so these tests compute GELU and tanh in
float16 (`CPU_LP16`), the ops whose CPU kernels have it; on GPUs the same code runs AMP's default
list (FullyConnected included). bfloat16 needs AVX-512 and is checked either way.
"""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from gluonbert.precision import UnsupportedPrecisionError, bfloat16_supported
from gluonbert.train import NonFiniteLossError, TrainConfig, TrainingLoop
from gluonbert.train.mixed_precision import (DynamicLossScale, LowPrecisionForward,
                                             check_mixed_precision)
from conftest import random_batch, tiny_model
from test_train import (CE, assert_same_params, batches, ce_loss, classifier, make_data,
                        params_of, train)

CPU_LP16 = ('LeakyReLU', 'Activation')  # GELU and the pooler's tanh
FP16 = dict(dtype='float16', lp16_ops=CPU_LP16)


def copy_of(net, dropout=0.0):
    """A classifier with the same weights as `net`."""
    twin = classifier(dropout=dropout)
    weights = params_of(net)
    for name, param in twin._collect_params_with_prefix().items():
        param.set_data(weights[name])
    return twin


def test_forward_computes_in_float16_on_the_float32_weights():
    net = classifier()
    inputs = [mx.nd.array(a) for a in random_batch()]
    reference = net(*inputs).asnumpy()
    forward = LowPrecisionForward(net, 'float16', CPU_LP16)
    out = forward(*inputs)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), reference, atol=2e-3, rtol=0)
    assert np.abs(out.asnumpy() - reference).max() > 0  # float16 rounding happened
    graph = forward.block._cached_graph[1].get_internals()
    _, types, _ = graph.infer_type(data0='float32', data1='float32', data2='float32')
    half = [n for n, t in zip(graph.list_outputs(), types) if t == np.float16]
    assert any('gelu' in n for n in half) and any('tanh' in n for n in half)
    assert not any('ffn_2_fwd_output' == n.split('layers_0_')[-1] for n in half)  # FC: float32
    for name, param in forward.block.collect_params().items():
        assert param is net.collect_params()[name] and np.dtype(param.dtype) == np.float32


def test_float16_training_tracks_float32():
    data = make_data(96)
    full = classifier()
    half = copy_of(full)
    state32 = train(full, data, 8, epochs=5, lr=3e-3, log_every=4)
    state16 = train(half, data, 8, epochs=5, lr=3e-3, log_every=4, **FP16)
    loss32 = [h['loss'] for h in state32['history'] if 'loss' in h]
    loss16 = [h['loss'] for h in state16['history'] if 'loss' in h]
    assert loss16[-1] < 0.5 * loss16[0]
    np.testing.assert_allclose(loss16, loss32, atol=1e-3, rtol=0)  # seen: 1.2e-5
    assert_same_params(params_of(full), params_of(half), atol=1e-3)  # seen: 7e-5
    assert np.abs(params_of(half)['classifier.weight'] - params_of(full)['classifier.weight']) \
        .max() > 0  # computed in float16, not float32


def make_loop(net, **config):
    config = TrainConfig(**dict(dict(lr=1e-3, epochs=1, progress=False, log_every=1), **config))
    return TrainingLoop(net, ce_loss, mx.cpu(), config)


def test_an_overflowing_step_is_skipped_and_halves_the_scale():
    data = make_data(16)
    net = classifier()
    before = params_of(net)
    loop = make_loop(net, init_loss_scale=2.0 ** 40, **FP16)  # GELU's float16 grads overflow
    loop.fit(batches(data, 8, 0), 2, max_steps=1)
    assert_same_params(before, params_of(net), atol=0)
    assert loop.loss_scale.state_dict() == dict(scale=2.0 ** 39, good_steps=0,
                                                skipped_in_a_row=1, skipped=1)
    sane = make_loop(net, init_loss_scale=2.0 ** 10, **FP16)
    sane.fit(batches(data, 8, 0), 2, max_steps=1)
    assert np.abs(params_of(net)['classifier.weight'] - before['classifier.weight']).max() > 1e-4
    assert sane.loss_scale.state_dict() == dict(scale=2.0 ** 10, good_steps=1,
                                                skipped_in_a_row=0, skipped=0)


def test_loss_scale_doubles_after_a_window_halves_to_its_floor_and_counts_skips():
    scale = DynamicLossScale(mx.cpu(), init_scale=8.0, window=3, min_scale=2.0, max_scale=32.0)
    finite, overflow = mx.nd.array([1]), mx.nd.array([0])
    seen = []
    for flag in [finite] * 3 + [finite, overflow] + [finite] * 9 + [overflow] * 6:
        scale.update(flag)
        seen.append(scale.state_dict()['scale'])
    assert seen == [8, 8, 16, 16, 8, 8, 8, 16, 16, 16, 32, 32, 32, 32, 16, 8, 4, 2, 2, 2]
    assert scale.state_dict() == dict(scale=2.0, good_steps=0, skipped_in_a_row=6, skipped=7)
    with pytest.raises(ValueError, match='min_scale=1.0 <= init_scale=0'):
        DynamicLossScale(mx.cpu(), init_scale=0)


def fit(net, data, output_dir=None, resume=False, max_steps=None, **config):
    """(loop, state) of a run over `data` in batches of 8."""
    config = TrainConfig(**dict(dict(lr=1e-3, epochs=3, eval_every=2, warmup_ratio=0.25,
                                     progress=False, log_every=2), **config))
    loop = TrainingLoop(net, ce_loss, mx.cpu(), config, output_dir=output_dir)
    state = loop.fit(batches(data, 8, config.seed), -(-len(data[0]) // 8), resume=resume,
                     max_steps=max_steps)
    return loop, state


def test_interrupted_float16_run_resumes_with_its_loss_scale(tmp_path):
    data = make_data(40)
    config = dict(loss_scale_window=2, **FP16)  # the scale moves: x2 every 2 finite steps
    reference = classifier(dropout=0.1)
    first = copy_of(reference, dropout=0.1)
    ref_loop, end = fit(reference, data, **config)
    fit(first, data, output_dir=str(tmp_path), max_steps=7, **config)
    with open(tmp_path / 'checkpoints' / 'step-00000006' / 'state.json', encoding='utf-8') as f:
        saved = json.load(f)['loss_scale']
    assert saved == dict(scale=2.0 ** 19, good_steps=0, skipped_in_a_row=0, skipped=0)
    resumed = classifier(dropout=0.1)
    loop, state = fit(resumed, data, output_dir=str(tmp_path), resume=True, **config)
    assert state['step'] == end['step'] == 15
    assert_same_params(params_of(reference), params_of(resumed))
    # a power-of-two scale cancels exactly, so the weights alone cannot tell: compare the scale
    assert loop.loss_scale.state_dict() == ref_loop.loss_scale.state_dict() == dict(
        scale=2.0 ** 23, good_steps=1, skipped_in_a_row=0, skipped=0)


def test_a_float32_checkpoint_resumes_in_float16_and_back(tmp_path):
    data = make_data(40)
    net = classifier()
    fit(net, data, output_dir=str(tmp_path / 'a'), max_steps=7)
    loop, state = fit(net, data, output_dir=str(tmp_path / 'a'), resume=True, **FP16)
    assert state['step'] == 15 and loop.loss_scale.state_dict()['scale'] == 2.0 ** 16
    fit(net, data, output_dir=str(tmp_path / 'b'), max_steps=7, **FP16)
    _, state = fit(net, data, output_dir=str(tmp_path / 'b'), resume=True)
    assert state['step'] == 15 and 'loss_scale' not in state


def test_gradients_that_overflow_at_every_scale_stop_the_run():
    """A loss whose value is finite but whose gradient is NaN (sqrt'(0) * 0): every step is
    skipped, the scale falls to its floor, and the run stops with the reason."""
    def finite_loss_nan_grad(net, *batch):
        logits = net(*batch[:3])
        return CE(logits, batch[3]) + mx.nd.sqrt(logits.sum(axis=1) * 0)

    net = classifier()
    before = params_of(net)
    config = TrainConfig(lr=1e-3, epochs=8, progress=False, log_every=4, **FP16)
    loop = TrainingLoop(net, finite_loss_nan_grad, mx.cpu(), config)
    with pytest.raises(NonFiniteLossError, match='not finite in the last 32 steps in a row '
                                                 r'\(loss scale now 1\)'):
        loop.fit(batches(make_data(48), 8, 0), 6)
    assert_same_params(before, params_of(net), atol=0)


def test_precisions_that_cannot_run_here_say_why():
    with pytest.raises(UnsupportedPrecisionError, match='float16 training needs GPU contexts'):
        check_mixed_precision('float16', [mx.cpu()])
    with pytest.raises(UnsupportedPrecisionError, match='needs GPU contexts'):
        make_loop(classifier(), dtype='float16')
    with pytest.raises(ValueError, match="dtype='float64'"):
        check_mixed_precision('float64', [mx.cpu()])
    with pytest.raises(UnsupportedPrecisionError, match='CPU only'):
        check_mixed_precision('bfloat16', [mx.gpu(0)])
    assert check_mixed_precision('float16', [mx.gpu(0), mx.gpu(1)]) == 'float16'


def test_bfloat16_training_runs_where_the_cpu_has_it_or_names_the_missing_flags():
    data = make_data(24)
    full = classifier()
    half = copy_of(full)
    if not bfloat16_supported():
        with pytest.raises(UnsupportedPrecisionError, match='AVX-512'):
            train(half, data, 8, dtype='bfloat16')
        return
    train(full, data, 8, lr=3e-3)
    train(half, data, 8, lr=3e-3, dtype='bfloat16')
    assert_same_params(params_of(full), params_of(half), atol=2e-2)


def test_script_refuses_float16_on_the_cpu_before_loading_anything(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'model_zoo', 'bert'))
    import finetune_classifier
    with pytest.raises(SystemExit, match='float16 training needs GPU contexts'):
        finetune_classifier.main(['--task', 'sst-2', '--data-dir', str(tmp_path), '--from-scratch',
                                  '--dtype', 'float16', '--output-dir', str(tmp_path / 'out')])
    assert not os.path.exists(tmp_path / 'out')


def test_pretraining_outputs_and_gradients_through_float16():
    """The four outputs of an MLM + NSP model come back float32; gradients match float32 up
    to float16 rounding (seen: 7.7e-4 on gradients of 0.3)."""
    from gluonbert.train.pretraining import pretraining_loss
    net = tiny_model()
    ids, types, lengths = random_batch()
    batch = (ids, types, lengths, mx.nd.array([[1, 2], [0, 3], [1, 1]]),
             mx.nd.array([[5, 6], [7, 8], [9, 9]]), mx.nd.array([[1, 1], [1, 1], [1, 0]]),
             mx.nd.array([0, 1, 0]))
    loss = pretraining_loss()
    grads = []
    for forward in (net, LowPrecisionForward(net, 'float16', CPU_LP16)):
        with mx.autograd.record():
            total = loss(forward, *batch).sum()
        total.backward()
        grads.append({k: p.grad().asnumpy().copy() for k, p in net.collect_params().items()})
        outputs = forward(*batch[:4])
        assert [o.dtype for o in outputs] == [np.float32] * 4
    for name in grads[0]:
        np.testing.assert_allclose(grads[1][name], grads[0][name], atol=1e-3, rtol=1e-2,
                                   err_msg=name)


def test_the_gpu_float16_graph_converts_and_type_checks():
    """AMP's default float16 list cannot run on the CPU, but its rewrite of the BERT graph can be
    built and type-inferred here: the matmuls in float16, LayerNorm and softmax in float32."""
    from gluonbert.train.mixed_precision import convert_graph
    net = classifier(dropout=0.1)
    net.hybridize()
    net(*random_batch())
    data, symbol = net._cached_graph
    graph = convert_graph(symbol, [d.name for d in data], 'float16').get_internals()
    _, types, _ = graph.infer_type(data0='int32', data1='int32', data2='int32')
    dtype = dict(zip(graph.list_outputs(), types))

    def of(suffix):
        return {t for n, t in dtype.items() if n.endswith(suffix)}
    for dense in ('qkv_fwd_output', 'out_proj_fwd_output', 'ffn_1_fwd_output',
                  'ffn_2_fwd_output', 'pooler_dense_fwd_output', 'classifier_fwd_output'):
        assert of('_' + dense) == {np.float16}, dense
    assert of('selfatt_qk0_output') == {np.float16}  # widest type of its float16 input
    # LayerNorm is MXNet's on GPUs, gluonbert's kernel in this CPU-built graph: float32 both
    layer_norms = of('layernorm0_output') | of('_gluonbert_layer_norm0_output')
    assert layer_norms == of('softmax0_output') == {np.float32}
    assert dtype[graph.list_outputs()[-1]] == np.float32  # logits cast back
