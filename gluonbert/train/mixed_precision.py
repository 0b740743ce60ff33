"""Mixed-precision training: MXNet AMP's graph rewrite over float32 master weights, and a dynamic
loss scale that lives on the device (no host sync per step).

`LowPrecisionForward` runs a network through `mxnet.contrib.amp.convert_symbol`'s rewrite of its
graph, as a SymbolBlock sharing the network's own float32 Parameters: the Trainer, checkpoints,
evaluation and export keep using the float32 network, and only the training forward/backward
computes in float16 or bfloat16. This is what `amp.init()` gives, without its process-wide
patching of every MXNet operator (which would also change evaluation and any other model).

Where each precision runs on MXNet 1.9.1:
- float16: GPUs. The CPU has no float16 FullyConnected ("only supported by CuDNN"), so AMP's
  default list cannot run there; `check_mixed_precision` says so before anything starts.
- bfloat16: CPUs whose oneDNN has bf16 kernels (AVX-512 and up, see `gluonbert.precision`);
  MXNet has no bf16 kernels on GPUs. Same exponent range as float32: no loss scaling.
"""
import warnings
from collections.abc import Mapping, Sequence

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import HybridBlock

from ..kernels import LAYER_NORM_OP
from ..precision import (UnsupportedPrecisionError, dropout_names, register_fp32_ops,
                         require_bfloat16)

LOW_PRECISION = ('float16', 'bfloat16')


def check_mixed_precision(dtype: str, ctxs: Sequence[mx.Context],
                          lp16_ops: Sequence[str] | None = None) -> str:
    """Raise a clear error when `dtype` training cannot run on `ctxs`; returns the dtype.

    `lp16_ops` is the operator list to compute in low precision (None: AMP's default list)."""
    if dtype == 'float32':
        return dtype
    if dtype not in LOW_PRECISION:
        raise ValueError(f'dtype={dtype!r}: expected float32, float16 or bfloat16')
    on_cpu = [c for c in ctxs if c.device_type == 'cpu']
    if dtype == 'float16' and on_cpu and (lp16_ops is None or 'FullyConnected' in lp16_ops):
        raise UnsupportedPrecisionError(
            'float16 training needs GPU contexts (--gpus): MXNet 1.9.1 has no float16 '
            'FullyConnected kernel on the CPU ("only supported by CuDNN"). On a CPU use float32, '
            'or bfloat16 where the CPU has AVX-512')
    if dtype == 'bfloat16':
        if len(on_cpu) != len(ctxs):
            raise UnsupportedPrecisionError('bfloat16 training runs on the CPU only (MXNet '
                                            '1.9.1 has bf16 kernels in oneDNN, none on GPUs); '
                                            'use float16 on GPUs')
        require_bfloat16('bfloat16 training', 'Use float32')
    return dtype


def convert_graph(symbol: mx.sym.Symbol, input_names: Sequence[str], dtype: str,
                  lp16_ops: Sequence[str] | None = None) -> mx.sym.Symbol:
    """AMP's rewrite of a float32 graph computing `lp16_ops` in `dtype` -> Symbol.

    lp16_ops=None is AMP's default list (float16: FullyConnected and friends; bfloat16: with
    the attention kernels, softmax, LayerNorm and dropouts kept in float32). An explicit list
    moves AMP's other low-precision ops to float32. Parameters stay float32: casts follow them.
    """
    from mxnet.contrib import amp
    kwargs = dict(data_names=list(input_names), cast_optional_params=False)
    register_fp32_ops(dtype, [LAYER_NORM_OP])  # float32-only: AMP casts around the kernel
    if lp16_ops is not None:
        lp16_ops = list(lp16_ops)
        kwargs.update(target_dtype_ops=lp16_ops, fp32_ops=[
            op for op in amp.list_lp16_ops(dtype) + amp.list_fp32_ops(dtype)
            if op not in lp16_ops], conditional_fp32_ops=[
                c for c in amp.list_conditional_fp32_ops(dtype) if c[0] not in lp16_ops])
    elif dtype == 'bfloat16':
        kwargs.update(fp32_ops=register_fp32_ops(), excluded_sym_names=dropout_names(symbol))
    return amp.convert_symbol(symbol, target_dtype=dtype, **kwargs)


class LowPrecisionForward:
    """Callable like `net`, computing through an AMP-rewritten copy of its graph that shares
    net's float32 Parameters; outputs are cast back to float32.

    The graph is taken from the first call's inputs (net is hybridized for it if needed)."""

    def __init__(self, net: HybridBlock, dtype: str, lp16_ops: Sequence[str] | None = None
                 ) -> None:
        if dtype not in LOW_PRECISION:
            raise ValueError(f'dtype={dtype!r}: expected one of {LOW_PRECISION}')
        self.net, self.dtype, self.lp16_ops = net, dtype, lp16_ops
        self.block = None

    def _build(self, inputs):
        if not self.net._active:
            self.net.hybridize(static_alloc=True)
        with autograd.pause():
            self.net(*inputs)  # builds net's cached graph
        data, symbol = self.net._cached_graph
        converted = convert_graph(symbol, [d.name for d in data], self.dtype, self.lp16_ops)
        with warnings.catch_warnings():  # the int inputs' type is only known at the call
            warnings.filterwarnings('ignore', message='Cannot decide type')
            self.block = mx.gluon.SymbolBlock(converted, data, params=self.net.collect_params())
        self.block.hybridize(static_alloc=True)

    def __call__(self, *inputs: mx.nd.NDArray) -> mx.nd.NDArray | tuple:
        """The net's outputs (float32), computed in mixed precision."""
        if self.block is None:
            self._build(inputs)
        outputs = self.block(*inputs)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(o.astype('float32', copy=False) for o in outputs)
        return outputs.astype('float32', copy=False)


class DynamicLossScale:
    """The loss scale S as an NDArray (1,): halved (down to `min_scale`) on a step whose
    gradients overflowed -- the optimizer skips that step -- and doubled after `window` finite
    steps in a row (never above `max_scale` by growing). Counts the skipped steps, in a row and
    in all."""

    FIELDS = ('scale', 'good_steps', 'skipped_in_a_row', 'skipped')

    def __init__(self, ctx: mx.Context, init_scale: float = 2.0 ** 16, window: int = 2000,
                 min_scale: float = 1.0, max_scale: float = 2.0 ** 24) -> None:
        if not (0 < min_scale <= min(init_scale, max_scale)) or window < 1:
            raise ValueError(f'need 0 < min_scale={min_scale} <= init_scale={init_scale} and '
                             f'max_scale={max_scale}, and '
                             f'window={window} >= 1')
        self.window, self.min_scale, self.max_scale = window, min_scale, max_scale
        self.scale = mx.nd.full((1,), init_scale, ctx=ctx)
        self.good_steps = mx.nd.zeros((1,), ctx=ctx)
        self.skipped_in_a_row = mx.nd.zeros((1,), ctx=ctx)
        self.skipped = mx.nd.zeros((1,), ctx=ctx)

    def update(self, finite: mx.nd.NDArray) -> None:
        """Record one step; `finite` is an NDArray (1,): 1 if its gradients were finite."""
        zero = mx.nd.zeros_like(self.good_steps)
        good = mx.nd.where(finite, self.good_steps + 1, zero)
        grow = good >= self.window
        grown = mx.nd.minimum(self.scale * 2, self.max_scale)
        shrunk = mx.nd.maximum(self.scale / 2, self.min_scale)
        self.scale = mx.nd.where(finite, mx.nd.where(grow, grown, self.scale), shrunk)
        self.good_steps = mx.nd.where(grow, zero, good)
        self.skipped_in_a_row = mx.nd.where(finite, zero, self.skipped_in_a_row + 1)
        self.skipped = self.skipped + (1 - finite)

    def state_dict(self) -> dict[str, float | int]:
        """{'scale': float, 'good_steps', 'skipped_in_a_row', 'skipped': ints} (reads the
        device: at log read-outs and checkpoints only)."""
        values = [getattr(self, name).asscalar() for name in self.FIELDS]
        return dict(zip(self.FIELDS, [float(values[0])] + [int(v) for v in values[1:]]))

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        """Restore what state_dict returned."""
        ctx = self.scale.context
        for name in self.FIELDS:
            setattr(self, name, mx.nd.full((1,), state.get(name, 0), ctx=ctx))
