"""Hybridized symbol export and re-import for deployment (`-symbol.json` + `-0000.params`)."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock, SymbolBlock

from .errors import DamagedFileError, mxnet_message
from .files import staged_files
from .kernels import make_portable_file
from .model.encoder import check_inputs

# parameter-name endings of an exported BERT's embedding tables -> the config field each sizes
EMBEDDING_LIMITS = {'word_embed_weight': 'vocab_size', 'token_type_embed_weight':
                    'token_type_vocab_size', 'position_weight': 'max_length'}


class CheckedSymbolBlock(SymbolBlock):
    """An imported BERT symbol that checks its NDArray inputs (input_ids, token_types,
    valid_length: (batch, seq_len) x 2 and (batch,)) as BERTEncoder does: ids within the
    vocabulary, lengths within 1..seq_len, seq_len within the position table. The raw symbol
    files loaded elsewhere (C++, other frontends) cannot check anything."""

    def __init__(self, outputs: mx.sym.Symbol | list[mx.sym.Symbol],
                 inputs: mx.sym.Symbol | list[mx.sym.Symbol],
                 params: mx.gluon.ParameterDict | None = None):
        super().__init__(outputs, inputs, params)
        self.config = None  # {'vocab_size', 'token_type_vocab_size', 'max_length'} once known

    def forward(self, x: mx.nd.NDArray | mx.sym.Symbol, *args: mx.nd.NDArray | mx.sym.Symbol
                ) -> mx.nd.NDArray | mx.sym.Symbol | list:
        """Check (batch, seq_len) NDArray inputs, then run the symbol."""
        if self.config is not None and isinstance(x, mx.nd.NDArray) and x.ndim == 2:
            check_inputs(self.config, x, *args[:2])  # the same checks as BERTEncoder's
        return super().forward(x, *args)


def _input_limits(block):
    """The sizes of an imported BERT's embedding tables as a BERTEncoder-like config, or None
    when the symbol has no such tables (not a BERT)."""
    config = {}
    for name, param in block.collect_params().items():
        for ending, field in EMBEDDING_LIMITS.items():
            if name.endswith(ending):
                config[field] = param.data().shape[0]
    return config if len(config) == len(EMBEDDING_LIMITS) else None


def export_model(block: HybridBlock, path_prefix: str, sample_inputs: Sequence[mx.nd.NDArray],
                 epoch: int = 0, portable: bool = True) -> tuple[str, str]:
    """Hybridize `block`, run it once on `sample_inputs`, write the symbol and params.

    Returns (symbol_file, params_file). The graph is length-agnostic: the exported model accepts
    any sequence length up to the position table, not only the sample's. portable=False keeps
    gluonbert's kernels in the graph (loadable only where `gluonbert.kernels` is loaded).
    """
    if isinstance(block, tuple):
        raise TypeError('export_model got a tuple; get_model() returns (model, vocab): '
                        'pass the model')
    if not block._active:
        block.hybridize(static_alloc=True)
    block(*sample_inputs)
    params_suffix = f'-{epoch:04d}.params'
    # the params first, the symbol (what a reader opens first) last: never a mixed pair
    with staged_files(path_prefix, (params_suffix, '-symbol.json')) as staged:
        HybridBlock.export(block, staged, epoch=epoch)  # not a subclass's portable export
        if portable:  # MXNet's own LayerNorm: loads without gluonbert
            make_portable_file(f'{staged}-symbol.json')
    return f'{path_prefix}-symbol.json', path_prefix + params_suffix


def import_model(path_prefix: str, num_inputs: int = 3, epoch: int = 0,
                 ctx: mx.Context | list[mx.Context] = mx.cpu(),
                 for_training: bool = True) -> CheckedSymbolBlock:
    """Load an exported model as a SymbolBlock taking inputs data0..data{num_inputs-1}; a BERT's
    inputs are checked as BERTModel checks them (CheckedSymbolBlock).

    for_training=False allocates no gradient buffers (inference only, about half the memory)."""
    symbol_file = f'{path_prefix}-symbol.json'
    params_file = f'{path_prefix}-{epoch:04d}.params'
    for path in (symbol_file, params_file):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'exported model file not found: {path}')
    names = [f'data{i}' for i in range(num_inputs)]
    with warnings.catch_warnings():
        # MXNet warns that it cannot infer the inputs' dtype before the first call; harmless.
        warnings.filterwarnings('ignore', message='Cannot decide type')
        # SymbolBlock.imports, split so grad_req is set before the parameters are allocated
        block = CheckedSymbolBlock(mx.sym.load(symbol_file), [mx.sym.var(n) for n in names])
    if not for_training:  # before the parameters exist, so no gradient buffer is allocated
        block.collect_params().setattr('grad_req', 'null')
    try:
        block.collect_params().load(params_file, ctx=ctx, cast_dtype=True, dtype_source='saved')
    except mx.base.MXNetError as err:
        raise DamagedFileError(f'cannot read {params_file}: {mxnet_message(str(err))} (truncated '
                               'or not an MXNet .params file; export the model again)') from None
    block.config = _input_limits(block)
    return block


def sample_inputs(vocab_size: int, batch_size: int = 2, seq_len: int = 8,
                  ctx: mx.Context = mx.cpu(), seed: int = 0
                  ) -> tuple[mx.nd.NDArray, mx.nd.NDArray, mx.nd.NDArray]:
    """Random valid (input_ids, token_types, valid_length): (batch, seq_len) x 2 and (batch,)."""
    rng = np.random.RandomState(seed)
    input_ids = rng.randint(0, vocab_size, size=(batch_size, seq_len))
    token_types = np.broadcast_to(np.arange(seq_len) >= seq_len // 2, (batch_size, seq_len))
    valid_length = [seq_len - i % max(1, seq_len // 2) for i in range(batch_size)]
    return tuple(mx.nd.array(a, ctx=ctx) for a in (input_ids, token_types, valid_length))


def optimize_for_cpu(block: HybridBlock, sample_inputs: Sequence[mx.nd.NDArray]
                     ) -> CheckedSymbolBlock:
    """A float32 inference copy of `block` with oneDNN's fused subgraphs (Dense + bias + GELU,
    the interleaved self-attention matmuls): same outputs, ~7% faster for MiniLM-size models
    on this project's AVX2 CPUs, ~1.5% for BERT-base. Not trainable; exportable."""
    import tempfile
    if isinstance(block, tuple):
        raise TypeError('optimize_for_cpu got a tuple; get_model() returns (model, vocab): '
                        'pass the model')
    with tempfile.TemporaryDirectory(prefix='gluonbert-fuse-') as folder:
        export_model(block, os.path.join(folder, 'model'), sample_inputs, portable=False)
        fused = import_model(os.path.join(folder, 'model'), num_inputs=len(sample_inputs))
    fused.optimize_for(*sample_inputs, backend='MKLDNN', static_alloc=True)
    return fused
