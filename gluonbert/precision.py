"""bfloat16 inference through MXNet's AMP, with the attention kernels kept in float32.

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

# AMP has no rule for these; they have no bf16 kernels, so they run in float32 (cast around).
FP32_OPS = ('_contrib_interleaved_matmul_selfatt_qk', '_contrib_interleaved_matmul_selfatt_valatt',
            'softmax', 'LayerNorm', LAYER_NORM_OP)


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
    block computing in bfloat16 (matmuls, GELU) with float32 attention, softmax and LayerNorm.
    Its outputs are float32. Raises UnsupportedPrecisionError where the CPU has no bf16."""
    if isinstance(model, tuple):
        raise TypeError('to_bfloat16 got a tuple; get_model() returns (model, vocab): pass the '
                        'model')
    require_bfloat16('bfloat16', 'Use float32, or int8 via gluonbert.quantize')
    converted = _amp_convert(model, sample_inputs)
    converted.hybridize(static_alloc=True)
    return _FloatOutputs(converted)


def _amp_convert(model, sample_inputs):
    """AMP's rewrite: casts to bfloat16 around every op except FP32_OPS and the dropouts
    (identity at inference; Dropout has no bf16 kernel). The rewritten graph runs only with
    AVX-512; on other CPUs it is still built and type-checked (tests/test_fast_inference.py)."""
    from mxnet.contrib import amp
    if not model._active:
        model.hybridize(static_alloc=True)
    model(*sample_inputs)
    symbol = model._cached_graph[1]
    return amp.convert_hybrid_block(model, target_dtype='bfloat16', fp32_ops=register_fp32_ops(),
                                    excluded_sym_names=dropout_names(symbol), ctx=mx.cpu())


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
