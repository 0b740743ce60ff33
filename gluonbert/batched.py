"""What pipelines and sentence embeddings share: a model from a folder, a dataset name or a
block; inputs sorted by length into batches; a progress bar on long runs; results back in
input order."""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Sequence

import mxnet as mx
import numpy as np

from .convert.hf import vocab_looks_cased
from .convert.layout import backbone_of
from .data import batchify
from .data.vocab import BERTVocab
from .model.bert import BERTModel
from .pretrained import PretrainedInfo, from_pretrained
from .registry import get_model
from .store import list_pretrained

# What load_model takes: a folder path or a pretrained dataset name, a block (with vocab=), or
# get_model's (block, vocab) pair.
ModelSource = str | os.PathLike | mx.gluon.Block | tuple[mx.gluon.Block, BERTVocab]

PROGRESS_MIN_INPUTS = 256  # progress=None shows a bar from this many inputs on (on a terminal)


def load_model(model: ModelSource, vocab: BERTVocab | None = None, ctx: mx.Context | None = None,
               lower: bool | None = None, max_length: int | None = None
               ) -> tuple[mx.gluon.HybridBlock, PretrainedInfo, bool]:
    """A folder path, a pretrained dataset name ('all_minilm_l6_v2'), a block (with vocab=) or
    get_model's (block, vocab) -> (block, PretrainedInfo, loaded_here).

    loaded_here is True when this call built the block (so it may be hybridized and have its
    gradients switched off); a block you pass is used as it is. max_length overrides the
    length the folder records (at most the position table's).
    """
    block, info, loaded_here = _load(model, vocab, ctx or mx.cpu(), lower)
    if max_length is not None:
        limit = backbone_of(block).config['max_length']
        if not isinstance(max_length, int) or not 2 <= max_length <= limit:
            raise ValueError(f'max_length must be an integer between 2 and the position '
                             f'table\'s {limit}; got {max_length!r}')
        info = dataclasses.replace(info, max_length=max_length)
    return block, info, loaded_here


def _load(model, vocab, ctx, lower):
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[1], BERTVocab):
        model, vocab = model[0], model[1] if vocab is None else vocab
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        if os.path.exists(name):
            block = from_pretrained(name, vocab=vocab, ctx=ctx, lower=lower)
            return block, block.pretrained_info, True
        block, vocab = _from_dataset_name(name, vocab, ctx)
        return block, _info(block, vocab, lower), True
    if isinstance(model, mx.gluon.Block):
        info = getattr(model, 'pretrained_info', None)
        if not isinstance(vocab, BERTVocab) and (vocab is not None or info is None):
            raise TypeError(f'a {type(model).__name__} block needs its vocabulary: pass '
                            'vocab=BERTVocab(...) (get_model returns it: model, vocab = '
                            'get_model(...))')
        if info is None:
            return model, _info(model, vocab, lower), False
        # what the caller gives replaces what the folder said; the rest (accents, CJK) stays
        if vocab is not None:
            info = dataclasses.replace(info, vocab=vocab)
        if lower is not None:
            info = dataclasses.replace(info, lower=bool(lower))
        return model, info, False
    raise TypeError(f'model must be a folder path, a pretrained dataset name or a gluonbert '
                    f'block; got {type(model).__name__}')


def _from_dataset_name(name, vocab, ctx):
    """A dataset name with pretrained weights -> get_model(<its model>, dataset_name=name)."""
    models = sorted(m for m, datasets in list_pretrained().items() if name in datasets)
    if not models:
        raise ValueError(f'{name!r} is neither an existing folder nor a pretrained dataset name '
                         '(see gluonbert.list_pretrained()); pass a folder written by '
                         'save_pretrained, or a dataset name such as "all_minilm_l6_v2"')
    if len(models) > 1:
        raise ValueError(f'dataset {name!r} has pretrained weights for several models '
                         f'({", ".join(models)}); build one with get_model(<model>, '
                         f'dataset_name={name!r}) and pass the block and its vocab')
    return get_model(models[0], dataset_name=name, vocab=vocab, pretrained=True, ctx=ctx,
                     use_decoder=False, use_classifier=False, dropout=0.0)


def _info(block, vocab, lower):
    """PretrainedInfo for a block that came without one."""
    if lower is None:
        lower = not vocab_looks_cased(vocab)
    return PretrainedInfo(vocab=vocab, lower=bool(lower),
                          max_length=int(backbone_of(block).config['max_length']))


def prepare_for_inference(block: mx.gluon.HybridBlock, loaded_here: bool,
                          hybridize: bool = True) -> mx.gluon.HybridBlock:
    """Hybridize `block` once and, for a block this module loaded, drop its gradient buffers."""
    if loaded_here:
        block.collect_params().setattr('grad_req', 'null')
    if hybridize and not block._active:
        block.hybridize(static_alloc=True)
    return block


def show_progress(count: int, progress: bool | None) -> bool:
    """progress=None: a bar only for many inputs and when stderr is a terminal."""
    if progress is None:
        return count >= PROGRESS_MIN_INPUTS and sys.stderr.isatty()
    return bool(progress)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices grouped into batches of similar length (longest first), so little padding
    is computed; each batch a list of indices into `lengths`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be an integer >= 1; got {batch_size!r}')
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind='stable').tolist()
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def run_batched(forward: Callable, rows: Sequence, batch_size: int,
                ctx: mx.Context | None = None, progress: bool | None = None,
                desc: str = 'batches') -> list[tuple[np.ndarray, ...]]:
    """(input_ids, token_types, valid_length) numpy rows -> per row, the tuple of `forward`'s
    outputs for that row (numpy; token-level outputs padded to their batch's width), in input
    order. Rows are sorted by length into batches."""
    ctx = ctx or mx.cpu()
    results = [None] * len(rows)
    batches = length_sorted_batches([int(row[2]) for row in rows], batch_size)
    pad = batchify.bert_inputs()
    bar = None
    if show_progress(len(rows), progress):
        from tqdm import tqdm
        bar = tqdm(total=len(rows), desc=desc, unit='text', file=sys.stderr)
    try:
        for batch in batches:
            inputs = [a.as_in_context(ctx) for a in pad([rows[i] for i in batch])]
            outputs = forward(*inputs)
            outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
            arrays = [o.asnumpy() for o in outputs]
            for k, index in enumerate(batch):
                results[index] = tuple(a[k] for a in arrays)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return results


def check_block(block: mx.gluon.Block, expected: tuple[type, ...], task: str) -> None:
    """Raise naming the task and the head it needs unless `block` is one of `expected`."""
    if not isinstance(block, expected):
        names = ' or '.join(cls.__name__ for cls in expected)
        raise ValueError(f'{task} needs a {names} model; this folder / block holds a '
                         f'{type(block).__name__}: use the pipeline task that matches its head')


def backbone(block: mx.gluon.Block) -> BERTModel:
    """The BERTModel inside a task head (or the block itself)."""
    return backbone_of(block)
