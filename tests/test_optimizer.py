"""BERTAdam: GluonNLP 0.10's numbers for single and aggregated (multi-tensor) updates, the
'bertadam' name for gluon.Trainer, and clear errors."""
import json
import os
import subprocess
import sys
import warnings

import gluonnlp.optimizer
import mxnet as mx
import numpy as np
import pytest

from gluonbert.optimizer import AdamW, BERTAdam

OPTIONS = [dict(), dict(clip_gradient=0.4, rescale_grad=0.14, wd=0.03),
           dict(rescale_grad=0.8, wd=0.05, learning_rate=0.01)]
SHAPES = [(7, 3), (5,), (4, 4, 2), (1, 9), (6,), (2, 2), (3, 5), (8,), (1,), (2, 3)]
STEPS = 3


def random_problem(dtype, seed=0):
    """Weights (one per SHAPES entry) and STEPS gradients for each, seeded."""
    rng = np.random.RandomState(seed)
    weights = [rng.uniform(-1, 1, shape).astype(dtype) for shape in SHAPES]
    grads = [[rng.uniform(-2, 2, shape).astype(dtype) for shape in SHAPES] for _ in range(STEPS)]
    return weights, grads


def train(optimizer, weights, grads, aggregated):
    """Run STEPS updates; returns the final weights and states as numpy."""
    dtype = weights[0].dtype
    params = [mx.nd.array(w, dtype=dtype) for w in weights]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # GluonNLP's fp16 advice when multi_precision is off
        states = [optimizer.create_state_multi_precision(i, p) for i, p in enumerate(params)]
    for step in grads:
        step = [mx.nd.array(g, dtype=dtype) for g in step]
        if aggregated:
            optimizer.update_multi_precision(list(range(len(params))), params, step, states)
        else:
            for i, (param, grad, state) in enumerate(zip(params, step, states)):
                optimizer.update_multi_precision(i, param, grad, state)
    flat = [x.asnumpy() for state in states for x in _flatten(state)]
    return [p.asnumpy() for p in params], flat


def _flatten(state):
    if isinstance(state, (tuple, list)):
        return [x for part in state for x in _flatten(part)]
    return [state]


def reference(weights, grads, learning_rate=1e-3, wd=0.0, rescale_grad=1.0, clip_gradient=None,
              beta1=0.9, beta2=0.999, epsilon=1e-6):
    """Google BERT's AdamWeightDecay in float64 numpy."""
    out = []
    for i, weight in enumerate(weights):
        w, m, v = weight.astype(np.float64), 0.0, 0.0
        for step in grads:
            g = step[i].astype(np.float64) * rescale_grad
            if clip_gradient is not None:
                g = np.clip(g, -clip_gradient, clip_gradient)
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            w = w - learning_rate * (m / (np.sqrt(v) + epsilon) + wd * w)
        out.append(w)
    return out


@pytest.mark.parametrize('aggregated', [False, True])
@pytest.mark.parametrize('options', OPTIONS)
def test_matches_googles_update_rule(options, aggregated):
    weights, grads = random_problem(np.float32)
    ours, _ = train(BERTAdam(**options), weights, grads, aggregated)
    for mine, ref in zip(ours, reference(weights, grads, **options)):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5)  # float32 kernels


@pytest.mark.parametrize('aggregation', ['1', '4', '50'])
@pytest.mark.parametrize('dtype, multi_precision', [(np.float32, False), (np.float16, True)])
@pytest.mark.parametrize('options', OPTIONS)
def test_matches_gluonnlps_bertadam(options, dtype, multi_precision, aggregation, monkeypatch):
    """Same kernels, same chunking by MXNET_OPTIMIZER_AGGREGATION_SIZE: identical numbers."""
    monkeypatch.setenv('MXNET_OPTIMIZER_AGGREGATION_SIZE', aggregation)
    weights, grads = random_problem(dtype, seed=1)
    options = dict(options, multi_precision=multi_precision)
    ours = BERTAdam(**options)
    theirs = gluonnlp.optimizer.BERTAdam(**options)
    assert ours.aggregate_num == theirs.aggregate_num == int(aggregation)
    for aggregated in (False, True):
        (mine, my_states), (ref, ref_states) = [
            train(opt, weights, grads, aggregated) for opt in (ours, theirs)]
        for a, b in zip(mine + my_states, ref + ref_states):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        ours, theirs = BERTAdam(**options), gluonnlp.optimizer.BERTAdam(**options)


@pytest.mark.parametrize('options', OPTIONS)
def test_float16_without_multi_precision_aggregates(options, monkeypatch):
    """GluonNLP 0.10's aggregated update crashed here (a float32 rescale_grad for float16 weights);
    ours updates such weights one kernel call each, as with aggregation off."""
    weights, grads = random_problem(np.float16, seed=3)
    with pytest.raises(mx.base.MXNetError, match='expected float16, got float32'):
        train(gluonnlp.optimizer.BERTAdam(**options), weights, grads, aggregated=True)
    aggregated, _ = train(BERTAdam(**options), weights, grads, aggregated=True)
    monkeypatch.setenv('MXNET_OPTIMIZER_AGGREGATION_SIZE', '1')
    one_by_one, _ = train(BERTAdam(**options), weights, grads, aggregated=True)
    for a, b in zip(aggregated, one_by_one):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(a).all() for a in aggregated)  # float16 moments: finite, not exact


def test_aggregated_equals_one_by_one():
    weights, grads = random_problem(np.float32, seed=2)
    one_by_one, _ = train(BERTAdam(wd=0.01, clip_gradient=0.5), weights, grads, False)
    aggregated, _ = train(BERTAdam(wd=0.01, clip_gradient=0.5), weights, grads, True)
    for a, b in zip(one_by_one, aggregated):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


TRAINER_SCRIPT = """
import json
import mxnet as mx, numpy as np
import gluonbert
from gluonbert.optimizer import BERTAdam
assert mx.optimizer.Optimizer.opt_registry['bertadam'] is BERTAdam
net = mx.gluon.nn.Dense(3, in_units=4)
net.initialize(mx.init.Constant(0.5))
trainer = mx.gluon.Trainer(net.collect_params(), 'bertadam', {'learning_rate': 0.1, 'wd': 0.01})
x = mx.nd.array(np.arange(8).reshape(2, 4) / 8.0)
for _ in range(2):
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()
    trainer.step(2)
assert type(trainer._optimizer) is BERTAdam and trainer._optimizer.aggregate_num == 4
print(json.dumps([net.weight.data().asnumpy().tolist(), net.bias.data().asnumpy().tolist()]))
"""


def test_trainer_by_name_runs_ours_aggregated():
    """A fresh process: importing gluonnlp as well would re-register 'bertadam' as its own."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', TRAINER_SCRIPT], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    weight, bias = (np.array(part) for part in json.loads(out.strip().splitlines()[-1]))
    x = np.arange(8).reshape(2, 4) / 8.0
    grad_w = np.tile(x.sum(axis=0), (3, 1)) / 2  # d(sum of outputs)/dW, rescaled by 1/batch
    grad_b = np.full(3, 2.0) / 2
    (ref_w,) = reference([np.full((3, 4), 0.5)], [[grad_w]] * 2, learning_rate=0.1, wd=0.01)
    (ref_b,) = reference([np.zeros(3)], [[grad_b]] * 2, learning_rate=0.1, wd=0.01)
    # rtol 1e-4: MXNet's kernels compute 1 - beta2 in float32 (9.9998713e-4, not 1e-3)
    np.testing.assert_allclose(weight, ref_w, rtol=1e-4)
    np.testing.assert_allclose(bias, ref_b, rtol=1e-4)
    assert not np.allclose(bias, reference([np.zeros(3)], [[grad_b]] * 2, 0.1, 0.0)[0],
                           rtol=1e-4)  # the bias decays too: Gluon's wd_mult is 1 for it


def test_bad_arguments_and_fp16_advice():
    with pytest.raises(TypeError, match=r"BERTAdam never corrects the bias; .*AdamW\(correct_bias"):
        BERTAdam(correct_bias=True)
    with pytest.warns(UserWarning, match='pass multi_precision=True'):
        BERTAdam().create_state_multi_precision(0, mx.nd.zeros((2,), dtype=np.float16))
    assert AdamW().aggregate_num == 0  # AdamW's callers keep one update per parameter


@pytest.mark.parametrize('scale', [float('nan'), float('inf'), 0.0])
def test_bad_grad_scale_skips_the_aggregated_step(scale):
    """As AdamW's: a non-finite or zero grad_scale leaves weights and moments untouched."""
    weights, grads = random_problem(np.float32, seed=4)
    optimizer = BERTAdam(learning_rate=0.1, wd=0.01)
    optimizer.grad_scale = mx.nd.array([scale])
    after, states = train(optimizer, weights, grads, aggregated=True)
    for a, b in zip(after, weights):
        np.testing.assert_array_equal(a, b)
    assert not any(s.any() for s in states)
    optimizer.grad_scale = mx.nd.array([0.5])  # a good factor: the step happens, halved grads
    halved, _ = train(optimizer, weights, grads, aggregated=True)
    half_grads = [[g * 0.5 for g in step] for step in grads]
    for mine, ref in zip(halved, reference(weights, half_grads, learning_rate=0.1, wd=0.01)):
        np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-5)
