"""Forward + backward times of the pieces gluonbert replaced, against what they replaced and
PyTorch, at MiniLM's b8 s128 sizes: LayerNorm (MXNet's, gluonbert's kernel, torch's) and the
attention mask add (broadcast add with its gradient, full-size elementwise add without).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_kernels.py
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(step, repeats):
    """Median wall time of `step()` in milliseconds, after one untimed call."""
    from gluonbert.benchmark.timing import median_seconds
    return 1e3 * median_seconds(step, repeats)


def mx_step(op, arrays, head):
    """op(*arrays) forward + backward, waited for."""
    import mxnet as mx
    for array in arrays:
        array.attach_grad()

    def step():
        with mx.autograd.record():
            out = op(*arrays)
        out.backward(head)
        mx.nd.waitall()
    return step


def main(argv=None):
    """Print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args(argv)
    import mxnet as mx
    import torch
    from gluonbert import kernels
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    if not kernels.load():
        raise SystemExit('gluonbert kernels are not available here')
    rng = np.random.RandomState(0)
    shape, heads = (128, 8, 384), 12  # (seq_len, batch, units), MiniLM
    x, head = rng.normal(size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    layer_norm = {
        'MXNet LayerNorm': lambda a, g, b: mx.nd.LayerNorm(a, g, b, axis=-1, eps=1e-12),
        'gluonbert kernel': lambda a, g, b: getattr(mx.nd._internal, kernels.LAYER_NORM_OP)(
            a, g, b, eps=1e-12)}
    times = {}
    for name, op in layer_norm.items():
        arrays = [mx.nd.array(a) for a in (x, gamma, beta)]
        times[name] = median_ms(mx_step(op, arrays, mx.nd.array(head)), args.repeats)
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    norm = torch.nn.LayerNorm(shape[-1], eps=1e-12)
    thead = torch.tensor(head, dtype=torch.float32)
    times['torch LayerNorm'] = median_ms(lambda: norm(tx).backward(thead), args.repeats)
    print('LayerNorm forward + backward, {} float32:'.format('x'.join(map(str, shape))))
    for name, ms in times.items():
        print('  {:18s} {:7.2f} ms  ({:.1f}x the kernel)'.format(
            name, ms, ms / times['gluonbert kernel']))

    seq, batch = shape[0], shape[1]
    scores = mx.nd.array(rng.normal(size=(batch * heads, seq, seq)))
    mask = mx.nd.array((rng.rand(batch * heads, 1, seq) < 0.2) * -1e4)
    grad = mx.nd.array(rng.normal(size=(batch * heads, seq, seq)))
    full = mx.nd.broadcast_like(mask, scores)
    broadcast = median_ms(mx_step(mx.nd.broadcast_add, [scores, mask], grad), args.repeats)
    scores2 = scores.copy()
    scores2.attach_grad()

    def elementwise():
        with mx.autograd.record():
            out = mx.nd.elemwise_add(scores2, full)  # full-size mask, no gradient attached
        out.backward(grad)
        mx.nd.waitall()
    print('attention mask add, forward + backward, scores {}:'.format(
        'x'.join(map(str, scores.shape))))
    print('  {:40s} {:7.2f} ms'.format('broadcast_add of (B*H, 1, S), mask gets a gradient',
                                       broadcast))
    print('  {:40s} {:7.2f} ms'.format('elemwise_add of (B*H, S, S), no mask gradient',
                                       median_ms(elementwise, args.repeats)))


if __name__ == '__main__':
    main()
