"""A keras-style model summary for Gluon blocks: one row per block, parameter counts, shapes."""
from __future__ import annotations

import mxnet as mx


def count_parameters(block: mx.gluon.Block) -> int:
    """Number of scalar parameters in `block`, each shared Parameter counted once."""
    unique = {id(p): p for p in block.collect_params().values()}
    return sum(int(_size(p.shape)) for p in unique.values())


def _size(shape):
    total = 1
    for dim in shape:
        total *= dim
    return total


def model_summary(block: mx.gluon.Block, *inputs: mx.nd.NDArray, max_depth: int = 3) -> str:
    """Table (str) of blocks up to `max_depth`: path, type, output shape (if inputs), params.

    Output shapes come from one imperative forward pass with `inputs`; pass none to skip it.
    """
    rows = []  # (depth, path, block)

    def walk(blk, path, depth):
        rows.append((depth, path, blk))
        if depth < max_depth:
            for name, child in blk._children.items():
                walk(child, path + '.' + name if path else name, depth + 1)

    walk(block, '', 0)
    shapes = _output_shapes(block, [b for _, _, b in rows], inputs) if inputs else {}
    structural = block._collect_params_with_prefix()
    lines = []
    header = '{:<40} {:<24} {:<34} {:>12}'.format('Block (path)', 'Type', 'Output shape',
                                                   'Params')
    lines += [header, '=' * len(header)]
    for depth, path, blk in rows:
        prefix = path + '.' if path else ''
        own = sum(_size(p.shape) for name, p in structural.items() if name.startswith(prefix))
        label = ('  ' * depth + (path.rsplit('.', 1)[-1] if path else '(model)'))[:40]
        lines.append('{:<40} {:<24} {:<34} {:>12,}'.format(
            label, type(blk).__name__[:24], shapes.get(id(blk), ''), own))
    total = count_parameters(block)
    trainable = sum(_size(p.shape) for p in {id(p): p for p in block.collect_params().values()
                                             if p.grad_req != 'null'}.values())
    lines += ['=' * len(header),
              f'Total params: {total:,} (shared weights counted once)',
              f'Trainable params: {trainable:,}',
              f'Non-trainable params: {total - trainable:,}']
    return '\n'.join(lines)


def _output_shapes(root, blocks, inputs):
    """Run `root(*inputs)` imperatively with forward hooks; id(block) -> shape string."""
    if getattr(root, '_active', False):
        raise ValueError('model_summary needs a model that is not hybridized yet to see each '
                         "block's output shape; call it before hybridize(), or without inputs")
    shapes, handles = {}, []

    def hook(blk, _inputs, outputs):
        outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        shapes[id(blk)] = ', '.join(str(tuple(o.shape)) for o in outs
                                    if isinstance(o, mx.nd.NDArray))

    for blk in blocks:
        handles.append(blk.register_forward_hook(hook))
    try:
        root(*inputs)
    finally:
        for handle in handles:
            handle.detach()
    return shapes
