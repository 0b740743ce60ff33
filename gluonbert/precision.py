"""bfloat16 inference: oneDNN's fused graph, then MXNet's AMP, with attention kept in float32.

MXNet 1.9's bf16 runs on oneDNN 2.4, which has bf16 kernels only for CPUs with AVX-512 (and
uses AVX512_BF16/AMX where present). `to_bfloat16` first asks oneDNN for one bf16 matmul and
raises `UnsupportedPrecisionError` naming the CPU when it has none, instead of failing deep in
a forward pass with "could not create a primitive descriptor iterator".
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import mxnet as mx

from .hardware import cpu_flags
from .kernels import LAYER_NORM_OP

# Run in float32 with casts around: no bf16 kernels (the interleaved attention matmuls, our
# LayerNorm), AMP's own float32 list (softmax, LayerNorm), and oneDNN's fused attention matmuls,
# which MXNet 1.9.1 accepts in bf16 but then crashes in (segfault, BERT-base 8x128).
FP32_OPS = ('_contrib_interleaved_matmul_selfatt_qk', '_contrib_interleaved_matmul_selfatt_valatt',
            'softmax', 'LayerNorm', LAYER_NORM_OP, '_sg_mkldnn_selfatt_qk',
            '_sg_mkldnn_selfatt_valatt')
# oneDNN's fused Dense (+ bias + GELU) from optimize_for: AMP 1.9.1 lists it as float32, but its
# kernel runs bf16 (one cast less per Dense and GELU in bf16: 8% faster for BERT-base 8x128).
BF16_OPS = ('_sg_mkldnn_fully_connected',)


class UnsupportedPrecisionError(RuntimeError):
    """The requested precision has no kernels on this machine."""


@functools.cache
def bfloat16_supported() -> bool:
    """True when oneDNN can run a bf16 matmul on this CPU."""
    try:
        from mxnet.contrib.amp.amp import bfloat16
        data = mx.nd.amp_cast(mx.nd.ones((2, 4)), dtype=bfloat16)
        weight = mx.nd.amp_cast(mx.nd.ones((3, 4)), dtype=bfloat16)
        mx.nd.FullyConnected(data, weight, no_bias=True, num_hidden=3).wait_to_read()
        return True
    except mx.base.MXNetError:
        return False


def require_bfloat16(what: str, instead: str) -> None:
    """Raise UnsupportedPrecisionError naming the CPU and its flags when it has no bf16
    kernels; `what` names the feature, `instead` says what to use."""
    if bfloat16_supported():
        return
    name, flags = cpu_flags()
    raise UnsupportedPrecisionError(
        '{} is not available on this CPU ({}; flags: {}): MXNet 1.9.1\'s oneDNN 2.4 has bf16 '
        'kernels only for AVX-512 CPUs. {}'.format(what, name, ', '.join(sorted(flags)) or 'none',
                                                    instead))


def to_bfloat16(model: mx.gluon.HybridBlock, sample_inputs: Sequence[mx.nd.NDArray]
                ) -> mx.gluon.HybridBlock:
    """fp32 HybridBlock + one sample batch (input_ids, token_types, valid_length) -> a hybridized
    inference copy computing in bfloat16 (oneDNN's fused Dense + bias + GELU, weights stored in
    bf16) with float32 attention, softmax and LayerNorm; any batch size and length. Its outputs
    are float32; `model` keeps its fp32 weights (it is hybridized if it was not). Raises
    UnsupportedPrecisionError where the CPU has no bf16."""
    if isinstance(model, tuple):
        raise TypeError('to_bfloat16 got a tuple; get_model() returns (model, vocab): pass the '
                        'model')
    require_bfloat16('bfloat16', 'Use float32, or int8 via gluonbert.quantize')
    converted = _amp_convert(model, sample_inputs)
    # static_shape re-plans memory on a new shape; still ~20% faster with alternating lengths
    converted.hybridize(static_alloc=True, static_shape=True)
    return _FloatOutputs(converted)


def _amp_convert(model, sample_inputs):
    """oneDNN's fused copy of the graph (`optimize_for_cpu`), then AMP's rewrite: casts to
    bfloat16 around every op except FP32_OPS and the dropouts (identity at inference; Dropout
    has no bf16 kernel), parameters cast once. The rewritten graph runs only with AVX-512; on
    other CPUs it is still built and type-checked (tests/test_fast_inference.py)."""
    from mxnet.contrib import amp

    from .export import optimize_for_cpu
    fused = optimize_for_cpu(model, sample_inputs)  # optimize_for leaves its graph cached
    symbol = fused._cached_graph[1]
    register_bf16_ops()
    return amp.convert_hybrid_block(fused, target_dtype='bfloat16', fp32_ops=register_fp32_ops(),
                                    excluded_sym_names=dropout_names(symbol), ctx=mx.cpu(),
                                    cast_optional_params=True)


def register_bf16_ops(ops: Sequence[str] = BF16_OPS) -> list[str]:
    """Move `ops` from AMP's bfloat16 float32 list to its bfloat16 list; returns them."""
    from mxnet.contrib.amp.lists import symbol_bf16
    for op in ops:
        if op in symbol_bf16.FP32_FUNCS:
            symbol_bf16.FP32_FUNCS.remove(op)
        if op not in symbol_bf16.BF16_FUNCS:
            symbol_bf16.BF16_FUNCS.append(op)
    return list(ops)


def register_fp32_ops(dtype: str = 'bfloat16', ops: Sequence[str] = FP32_OPS) -> list[str]:
    """Add `ops` to AMP's float32 list for `dtype` (AMP refuses fp32_ops it has no entry
    for); returns them as the list to pass as `fp32_ops`."""
    from mxnet.contrib.amp.lists import symbol_bf16, symbol_fp16
    lists = symbol_bf16 if dtype == 'bfloat16' else symbol_fp16
    for op in ops:
        if op not in lists.FP32_FUNCS:
            lists.FP32_FUNCS.append(op)
    return list(ops)


def dropout_names(symbol: mx.sym.Symbol) -> list[str]:
    """Names of the Dropout nodes of a graph (no bf16 kernel: AMP must leave them alone)."""
    return [name[:-len('_output')] for name in symbol.get_internals().list_outputs()
            if 'dropout' in name and name.endswith('_output')]


class _FloatOutputs(mx.gluon.HybridBlock):
    """Casts a converted block's outputs back to float32 for callers that compare or argmax."""

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def hybrid_forward(self, F, *inputs):
        """inputs -> the block's outputs as float32."""
        outputs = self.block(*inputs)
        if isinstance(outputs, (list, tuple)):
            return tuple(F.cast(o, 'float32') for o in outputs)
        return F.cast(outputs, 'float32')
