"""gluonbert's C++ LayerNorm kernel: same values and gradients as MXNet's, safe accumulation,
portable exports, and a working fallback when it cannot be built."""
import json
import re
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluonbert import kernels
from gluonbert.export import export_model
from gluonbert.model.layer_norm import LayerNorm

pytestmark = pytest.mark.skipif(not kernels.load(), reason='kernels could not be built here')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def native(x, gamma, beta, eps):
    return mx.nd.LayerNorm(x, gamma, beta, axis=-1, eps=eps)


def kernel(x, gamma, beta, eps):
    return mx.nd._internal._gluonbert_layer_norm(x, gamma, beta, eps=eps)


def values_and_grads(op, shape, eps, seed=0):
    """op's output and the gradients of (x, gamma, beta) for a random upstream gradient."""
    rng = np.random.RandomState(seed)
    x = mx.nd.array(rng.normal(1.0, 3.0, size=shape))
    gamma, beta = (mx.nd.array(rng.normal(size=shape[-1])) for _ in range(2))
    head = mx.nd.array(rng.normal(size=shape))
    for array in (x, gamma, beta):
        array.attach_grad()
    with autograd.record():
        out = op(x, gamma, beta, eps)
    out.backward(head)
    return [a.asnumpy() for a in (out, x.grad, gamma.grad, beta.grad)]


@pytest.mark.parametrize('shape,eps', [((16, 4, 384), 1e-12), ((3, 768), 1e-5), ((7, 5), 1e-3),
                                       ((2, 3, 4, 33), 1e-12)])
def test_kernel_matches_mxnet_layer_norm_and_its_gradients(shape, eps):
    expected, got = values_and_grads(native, shape, eps), values_and_grads(kernel, shape, eps)
    for name, want, have in zip(('out', 'd_x', 'd_gamma', 'd_beta'), expected, got):
        scale = np.abs(want).max()
        assert np.abs(want - have).max() <= 2e-6 * scale, name


def test_gradients_are_deterministic():
    first, second = (values_and_grads(kernel, (64, 8, 384), 1e-12) for _ in range(2))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def block_grads(grad_req, hybridize, passes):
    """Gradients of a LayerNorm block's gamma, beta and input after `passes` backward passes."""
    block = LayerNorm(epsilon=1e-12, in_channels=24)
    block.initialize()
    rng = np.random.RandomState(3)
    block.gamma.set_data(mx.nd.array(rng.normal(size=24)))
    block.collect_params().setattr('grad_req', grad_req)
    if hybridize:
        block.hybridize(static_alloc=True)
    x = mx.nd.array(rng.normal(size=(5, 2, 24)))
    x.attach_grad(grad_req)
    head = mx.nd.array(rng.normal(size=(5, 2, 24)))
    for _ in range(passes):
        with autograd.record():
            out = block(x)
        out.backward(head)
    assert block.uses_kernel()
    return [a.asnumpy() for a in (block.gamma.grad(), block.beta.grad(), x.grad)]


@pytest.mark.parametrize('hybridize', [False, True])
def test_grad_req_add_accumulates_instead_of_overwriting(hybridize):
    once = block_grads('write', hybridize, 1)
    for twice, single in zip(block_grads('add', hybridize, 2), once):
        np.testing.assert_allclose(twice, 2 * single, rtol=1e-6, atol=1e-6)
        assert np.abs(single).max() > 0


def test_frozen_gamma_and_beta_still_give_the_input_gradient():
    expected = block_grads('write', True, 1)[2]
    block = LayerNorm(epsilon=1e-12, in_channels=24)
    block.initialize()
    rng = np.random.RandomState(3)
    block.gamma.set_data(mx.nd.array(rng.normal(size=24)))
    block.collect_params().setattr('grad_req', 'null')
    block.hybridize(static_alloc=True)
    x = mx.nd.array(rng.normal(size=(5, 2, 24)))
    x.attach_grad()
    head = mx.nd.array(rng.normal(size=(5, 2, 24)))
    with autograd.record():
        out = block(x)
    out.backward(head)
    np.testing.assert_allclose(x.grad.asnumpy(), expected, rtol=1e-6, atol=1e-7)


def test_a_team_smaller_than_asked_for_still_covers_every_row():
    """OMP_THREAD_LIMIT below OMP_NUM_THREADS makes OpenMP start fewer threads than
    omp_get_max_threads() says: every row must still get its gradient."""
    script = '\n'.join([
        'import sys, numpy as np',
        'sys.path.insert(0, "tests")',
        'from test_kernels import values_and_grads, native, kernel',
        'want, got = (values_and_grads(op, (37, 64), 1e-5) for op in (native, kernel))',
        'print(max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(want, got)))'])
    env = dict(os.environ, OMP_NUM_THREADS='4', OMP_THREAD_LIMIT='1')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, env=env, cwd=ROOT)
    assert float(done.stdout.strip().splitlines()[-1]) < 2e-6


def test_a_bad_eps_is_an_error_naming_it():
    x = mx.nd.ones((2, 6))
    with pytest.raises(mx.base.MXNetError, match='eps must be a positive number; got abc'):
        mx.nd._internal._gluonbert_layer_norm(
            x, mx.nd.ones(6), mx.nd.ones(6), eps='abc').wait_to_read()


def test_other_dtypes_use_mxnet_layer_norm():
    block = LayerNorm(epsilon=1e-5, in_channels=8)
    block.initialize()
    block.cast('float16')
    assert not block.uses_kernel()
    x = mx.nd.array(np.random.RandomState(0).normal(size=(3, 8)), dtype='float16')
    expected = native(x, block.gamma.data(), block.beta.data(), 1e-5)
    np.testing.assert_array_equal(block(x).asnumpy(), expected.asnumpy())


def test_mismatched_gamma_is_an_error_naming_it():
    x = mx.nd.ones((2, 6))
    with pytest.raises(mx.base.MXNetError, match='gamma and beta must have shape \\(6,\\)'):
        kernel(x, mx.nd.ones(5), mx.nd.ones(5), 1e-5).wait_to_read()


def test_exported_symbol_uses_mxnet_layer_norm_and_loads_without_gluonbert(tmp_path):
    block = mx.gluon.nn.HybridSequential()
    with block.name_scope():
        block.add(mx.gluon.nn.Dense(16, flatten=False, in_units=8))
        block.add(LayerNorm(epsilon=1e-12, in_channels=16))
    block.initialize(mx.init.Normal(0.5))
    x = mx.nd.array(np.random.RandomState(1).normal(size=(2, 3, 8)))
    block.hybridize(static_alloc=True)
    expected = block(x).asnumpy()
    assert kernels.LAYER_NORM_OP in block._cached_graph[1].tojson()
    symbol_file, params_file = export_model(block, str(tmp_path / 'model'), [x])
    ops = [node['op'] for node in json.load(open(symbol_file))['nodes']]
    assert kernels.LAYER_NORM_OP not in ops and ops.count('LayerNorm') == 1
    export_model(block, str(tmp_path / 'kept'), [x], portable=False)
    assert kernels.LAYER_NORM_OP in open(str(tmp_path / 'kept-symbol.json')).read()
    np.save(tmp_path / 'x.npy', x.asnumpy())
    script = ('import mxnet as mx, numpy as np, sys\n'
              'net = mx.gluon.SymbolBlock.imports(sys.argv[1], ["data"], sys.argv[2])\n'
              'print(repr(net(mx.nd.array(np.load(sys.argv[3]))).asnumpy().tolist()))\n')
    done = subprocess.run([sys.executable, '-c', script, symbol_file, params_file,
                           str(tmp_path / 'x.npy')], capture_output=True, text=True, check=True)
    got = np.array(eval(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_without_a_compiler_the_model_falls_back_and_says_so(tmp_path):
    script = '\n'.join([
        'import warnings, mxnet as mx, gluonbert',
        'from gluonbert import kernels',
        'with warnings.catch_warnings(record=True) as seen:',
        '    warnings.simplefilter("always")',
        '    net, _ = gluonbert.get_model("bert_2_128_2", pretrained=False, use_decoder=False)',
        '    net.initialize()',
        '    seq, pooled, nsp = net(mx.nd.ones((1, 4)), mx.nd.zeros((1, 4)), mx.nd.array([4]))',
        'said = [str(w.message) for w in seen if "kernels" in str(w.message)]',
        'print(kernels.load(), seq.shape, said)'])
    env = dict(os.environ, CXX='/bin/false', GLUONBERT_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True, env=env, cwd=ROOT)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith('False (1, 4, 128)') and 'compiling' in last and 'failed' in last, last


def test_horovod_backend_refuses_to_start_beside_loaded_kernels():
    """Horovod's MXNet library and an extension library crash MXNet 1.9.1 in one process: once
    the kernels are loaded, the Horovod backend says so instead of starting."""
    from gluonbert.train.distributed import HorovodBackend
    assert kernels.load() and not kernels.disable('too late')
    with pytest.raises(RuntimeError, match='GLUONBERT_KERNELS=0'):
        HorovodBackend()


def test_the_models_own_export_writes_mxnet_layer_norm(tmp_path):
    """`net.export` (Gluon's usual call) on gluonbert's models is portable too."""
    from gluonbert import get_model
    net, _ = get_model('bert_2_128_2', pretrained=False, use_decoder=False)
    net.initialize()
    net.hybridize(static_alloc=True)
    net(mx.nd.ones((1, 4)), mx.nd.zeros((1, 4)), mx.nd.array([4]))
    assert kernels.LAYER_NORM_OP in net._cached_graph[1].tojson()
    net.export(str(tmp_path / 'bert'))
    ops = [node['op'] for node in json.load(open(str(tmp_path / 'bert-symbol.json')))['nodes']]
    assert kernels.LAYER_NORM_OP not in ops and ops.count('LayerNorm') == 5


def test_kernel_benchmark_script_prints_every_variant(capsys):
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    import bench_kernels
    bench_kernels.main(['--repeats', '1'])
    out = capsys.readouterr().out
    for name in ('MXNet LayerNorm', 'gluonbert kernel', 'torch LayerNorm', 'broadcast_add',
                 'elemwise_add'):
        assert name in out
    assert re.search(r'gluonbert kernel +\d+\.\d+ ms', out)
