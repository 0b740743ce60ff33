"""How fast MXNet runs each Dense layer of a BERT on this CPU, by the kernel it reaches.

For every Dense shape of --model (qkv, out_proj, ffn_1, ffn_2) at each --tokens count, times one
hybridized, static forward of the same multiply three ways and prints GFLOP/s with the share of
this CPU's multiply-add peak (`gluonbert/benchmark/fma_peak.c`):

  * FullyConnected: what gluonbert's `nn.Dense` runs (oneDNN; plain weight layout in fp32/bf16);
  * dot:            `F.dot(x, weight, transpose_b=True)` + bias (fp32 only: no bf16 kernel);
  * conv1x1:        a 1x1 convolution over (1, in, tokens), channels first (oneDNN's blocked
                    kernels; needs the activations transposed, which is not timed here).

bf16 rows run where oneDNN has bf16 kernels (AVX-512 BF16), else the run says why not. These
are the numbers behind docs/performance.md's "Why bf16 and fp32 stop short here".

    OMP_NUM_THREADS=2 .venv/bin/python scripts/dense_kernels.py --model bert_12_768_12 \\
        --tokens 128 1024
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import mxnet as mx  # noqa: E402
from mxnet.gluon import HybridBlock, nn  # noqa: E402

from gluonbert.benchmark.machine import configure_threads  # noqa: E402
from gluonbert.benchmark.peak import fma_peak  # noqa: E402
from gluonbert.benchmark.timing import median_seconds  # noqa: E402
from gluonbert.errors import run_main  # noqa: E402
from gluonbert.precision import bfloat16_supported  # noqa: E402
from gluonbert.registry import get_hparams, list_models  # noqa: E402
from gluonbert.train.script_args import positive_int  # noqa: E402

ROUTES = ('FullyConnected', 'dot', 'conv1x1')


class _Dot(HybridBlock):
    """(tokens, in) -> (tokens, out) as dot + bias, with Dense's parameter shapes."""

    def __init__(self, units, in_units):
        super().__init__()
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(units, in_units))
            self.bias = self.params.get('bias', shape=(units,), init='zeros')

    def hybrid_forward(self, F, x, weight, bias):
        """x (tokens, in) -> (tokens, out)."""
        return F.broadcast_add(F.dot(x, weight, transpose_b=True), bias)


def route_block(route: str, in_units: int, units: int) -> tuple[HybridBlock, tuple]:
    """(block, input shape) computing the Dense in_units -> units the way `route` names."""
    if route == 'FullyConnected':
        return nn.Dense(units, in_units=in_units, flatten=False), ('tokens', in_units)
    if route == 'dot':
        return _Dot(units, in_units), ('tokens', in_units)
    return nn.Conv1D(units, 1, in_channels=in_units), (1, in_units, 'tokens')


def time_route(route: str, in_units: int, units: int, tokens: int, dtype: str,
               repeats: int) -> float:
    """Median seconds of one forward of the route at `tokens`, hybridized with static shapes."""
    from mxnet.contrib.amp.amp import bfloat16
    block, shape = route_block(route, in_units, units)
    block.initialize(mx.init.Normal(0.02))
    block.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.normal(shape=tuple(tokens if d == 'tokens' else d for d in shape))
    if dtype == 'bfloat16':
        block.cast(bfloat16)
        x = mx.nd.amp_cast(x, dtype=bfloat16)
    calls = max(1, int(2e9 / (2 * tokens * in_units * units)))  # ~20 ms a sample at 100 GFLOP/s
    return median_seconds(lambda: block(x).wait_to_read(), repeats, warmup=3, calls=calls)


def dense_shapes(model: str) -> dict[str, tuple[int, int]]:
    """Name -> (in_units, units) of each Dense in one transformer layer of `model`."""
    config = get_hparams(model)
    units, hidden = config['units'], config['hidden_size']
    return {'qkv': (units, 3 * units), 'out_proj': (units, units), 'ffn_1': (units, hidden),
            'ffn_2': (hidden, units)}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='bert_12_768_12', choices=list_models(),
                   metavar='NAME', help='a registered model (default %(default)s)')
    p.add_argument('--tokens', type=positive_int, nargs='+', default=[128, 1024],
                   help='batch x seq_len of the layer input (default: 128 1024)')
    p.add_argument('--repeats', type=positive_int, default=5, help='timed samples (median)')
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the table; returns its rows (layer, tokens, dtype, route, gflops, pct_peak)."""
    args = build_parser().parse_args(argv)
    threads, _ = configure_threads()  # OMP_NUM_THREADS, the core count when unset
    peaks, why = fma_peak(threads)
    dtypes = ['float32']
    if bfloat16_supported():
        dtypes.append('bfloat16')
    else:
        print('bf16: not run, this CPU has no bf16 kernels in MXNet 1.9.1\'s oneDNN',
              file=sys.stderr)
    if why:
        print(f'no multiply-add peak: {why}', file=sys.stderr)
    else:
        print(f'multiply-add peak on {threads} threads: fp32 {peaks["fp32"]:.1f}, bf16 '
              f'{peaks["bf16"] or "none"} GFLOP/s')
    print('\n| layer | tokens | dtype | ' + ' | '.join(ROUTES) + ' |')
    print('|---|---|---|' + '---|' * len(ROUTES))
    rows = []
    for name, (in_units, units) in dense_shapes(args.model).items():
        for tokens in args.tokens:
            for dtype in dtypes:
                cells = []
                for route in ROUTES:
                    if route == 'dot' and dtype == 'bfloat16':
                        cells.append('-')
                        continue
                    seconds = time_route(route, in_units, units, tokens, dtype, args.repeats)
                    gflops = 2 * tokens * in_units * units / seconds / 1e9
                    peak = peaks.get('bf16' if dtype == 'bfloat16' else 'fp32')
                    pct = 100 * gflops / peak if peak else None
                    rows.append(dict(layer=name, in_units=in_units, units=units, tokens=tokens,
                                     dtype=dtype, route=route, gflops=gflops, pct_peak=pct))
                    cells.append(f'{gflops:.0f}' + (f' ({pct:.0f}%)' if pct else ''))
                print(f'| {name} {in_units}->{units} | {tokens} | {dtype} | '
                      + ' | '.join(cells) + ' |')
    return rows


if __name__ == '__main__':
    sys.exit(run_main(main, prog='dense_kernels.py'))
