"""ONNX export of BERTModel and the task heads, for ONNX Runtime and OpenVINO.

The route is MXNet's own exporter (`mxnet.onnx`, "mx2onnx") on the hybridized symbol. The graph
takes HuggingFace's inputs: `input_ids`, `attention_mask`, `token_type_ids`, int64, of shape
(batch_size, sequence_length) ((batch_size, num_choices, sequence_length) for multiple choice),
and converts the mask to gluonbert's `valid_length` inside the graph (its sum over the last
axis: masks must be right-padded, 1s then 0s, as HF tokenizers make them). This module is the
only one that knows about ONNX; onnx (and onnxruntime for int8=True) are imported lazily.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
from typing import TYPE_CHECKING

import mxnet as mx
import numpy as np

from .files import write_with
from .kernels import make_portable
from .model import (BERTClassifier, BERTForMultipleChoice, BERTForQA, BERTForTokenClassification,
                    BERTModel, BERTRegression)

if TYPE_CHECKING:
    from onnx import GraphProto

# [(output name, dims)]: see output_spec
OutputSpec = list[tuple[str, tuple[str | None, ...]]]

INPUT_NAMES = ('input_ids', 'attention_mask', 'token_type_ids')
# mx2onnx 1.9.1 has translations for opsets 12 and 13 only; 13 is its newest.
SUPPORTED_OPSETS = (12, 13)
DEFAULT_OPSET = 13
_BATCH, _SEQ, _CHOICES = 'batch_size', 'sequence_length', 'num_choices'
_SUFFIX = '__gluonbert_onnx_out'


def output_spec(block: mx.gluon.HybridBlock) -> OutputSpec:
    """[(name, dims)] of the ONNX outputs of `block`, in its output order; dims name the dynamic
    axes (HF's names) and hold None where the size is fixed by the model (units, classes)."""
    if isinstance(block, BERTModel):
        if block.use_decoder:
            raise ValueError('this BERTModel has an MLM decoder (use_decoder=True), which needs '
                             'masked_positions: build it with get_model(..., use_decoder=False) '
                             'to export an encoder')
        spec = [('last_hidden_state', (_BATCH, _SEQ, None))]
        if block.use_pooler:
            spec.append(('pooler_output', (_BATCH, None)))
            if block.use_classifier:
                spec.append(('seq_relationship_logits', (_BATCH, None)))
        return spec
    if isinstance(block, (BERTClassifier, BERTRegression)):
        return [('logits', (_BATCH, None))]
    if isinstance(block, BERTForTokenClassification):
        return [('logits', (_BATCH, _SEQ, None))]
    if isinstance(block, BERTForQA):
        return [('start_logits', (_BATCH, _SEQ)), ('end_logits', (_BATCH, _SEQ))]
    if isinstance(block, BERTForMultipleChoice):
        return [('logits', (_BATCH, _CHOICES))]
    if isinstance(block, tuple):
        raise TypeError('export_onnx got a tuple; get_model() returns (model, vocab): '
                        'pass the model')
    raise TypeError(f'export_onnx exports BERTModel and the task heads (BERTClassifier, '
                    f'BERTRegression, BERTForTokenClassification, BERTForQA, '
                    f'BERTForMultipleChoice); got {type(block).__name__}')


def input_dims(block: mx.gluon.HybridBlock) -> tuple[str, ...]:
    """Dynamic axis names of each input: (batch_size, [num_choices,] sequence_length)."""
    if isinstance(block, BERTForMultipleChoice):
        return (_BATCH, _CHOICES, _SEQ)
    return (_BATCH, _SEQ)


def export_onnx(block: mx.gluon.HybridBlock, path: str, seq_len: int = 128, batch_size: int = 1,
                opset: int | None = None, dynamic: bool = True, int8: bool = False,
                num_choices: int = 2) -> str:
    """Write `block` (BERTModel or a task head) to the ONNX file `path`; returns `path`.

    Inputs input_ids, attention_mask, token_type_ids: int64 (batch_size, sequence_length), or
    (batch_size, num_choices, sequence_length) for BERTForMultipleChoice. Outputs: see
    `output_spec` (last_hidden_state (batch, seq_len, units), pooler_output (batch, units),
    logits, start_logits/end_logits). dynamic=True leaves batch, sequence length (and
    num_choices) free; dynamic=False fixes them to batch_size, seq_len (and num_choices).
    opset: 12 or 13 (default 13). int8=True stores onnxruntime's dynamic int8 quantization
    (per-channel int8 weights of MatMul/Gemm/Gather, activations quantized at run time).
    The file is written under a temporary name and renamed when complete.
    """
    import onnx
    spec = output_spec(block)
    opset = DEFAULT_OPSET if opset is None else opset
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f'opset {opset} is not supported: MXNet 1.9.1\'s exporter translates '
                         f'operators for opsets {SUPPORTED_OPSETS} only; runtimes that support '
                         f'newer opsets also run these (pass opset=None for {DEFAULT_OPSET})')
    for name, value in (('seq_len', seq_len), ('batch_size', batch_size),
                        ('num_choices', num_choices)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive integer; got {value!r}')
    if int8:
        _require_onnxruntime()
    shape = input_shape(block, batch_size, seq_len, num_choices)
    params = _float32_params(block, shape)
    symbol = onnx_input_symbol(block, spec)
    model = _convert(symbol, params, shape, opset)
    _rename_outputs(model, spec)
    _name_axes(model, input_dims(block), spec, shape, dynamic)
    _order_inputs(model)
    facts = node_facts(symbol, shape)
    simplify_reshapes(model.graph, facts)
    simplify_shape_like(model.graph, facts)
    prune_dead_nodes(model.graph)
    prune_initializers(model.graph)
    onnx.checker.check_model(model)
    _write_atomically(model, path, int8)
    return path


def input_shape(block: mx.gluon.HybridBlock, batch_size: int, seq_len: int,
                num_choices: int = 2) -> tuple[int, ...]:
    """The sample shape of each input: (batch, [num_choices,] seq_len)."""
    if isinstance(block, BERTForMultipleChoice):
        return (batch_size, num_choices, seq_len)
    return (batch_size, seq_len)


def _float32_params(block, shape):
    """{parameter name: NDArray} after one forward pass on a sample batch of `shape` (which
    finishes deferred initialization and checks seq_len against the position table)."""
    for param in block.collect_params().values():
        if np.dtype(param.dtype) != np.float32:
            raise ValueError(f'parameter {param.name} is {np.dtype(param.dtype).name}: ONNX '
                             f'export needs float32 weights; call block.cast("float32") first')
    contexts = []
    for param in block.collect_params().values():
        try:
            contexts.append(param.list_ctx()[0])
        except RuntimeError as err:  # never initialized (deferred ones have contexts)
            raise ValueError(f'{type(block).__name__} has uninitialized parameters '
                             f'({param.name}): load or initialize its weights before '
                             f'exporting (task heads: initialize_head())') from err
    ctx = contexts[0]
    ids = mx.nd.ones(shape, ctx=ctx)
    lengths = mx.nd.full(shape[:-1], shape[-1], ctx=ctx)
    with mx.autograd.predict_mode():
        block(ids, mx.nd.zeros(shape, ctx=ctx), lengths)
    return {param.name: param.data(param.list_ctx()[0]).as_in_context(mx.cpu())
            for param in block.collect_params().values()}


def onnx_input_symbol(block: mx.gluon.HybridBlock, spec: OutputSpec) -> mx.sym.Symbol:
    """`block` as a symbol of HF's inputs: int64 ids, mask and types become the float ids,
    types and valid_length (the mask's sum over the last axis) gluonbert's blocks take; each
    output passes through an identity named as in `spec`, so mx2onnx names the ONNX outputs.
    gluonbert's LayerNorm kernel is rewritten to MXNet's LayerNorm (`kernels.make_portable`)."""
    input_ids, attention_mask, token_type_ids = (mx.sym.var(name) for name in INPUT_NAMES)
    ids, types = mx.sym.cast(input_ids, 'float32'), mx.sym.cast(token_type_ids, 'float32')
    valid_length = mx.sym.sum(mx.sym.cast(attention_mask, 'float32'), axis=-1)
    outputs = block(ids, types, valid_length)
    if 'token_type_ids' not in _group(outputs).list_inputs():
        # A model without a segment table ignores the types, but serving code written for HF's
        # exports feeds token_type_ids and onnxruntime refuses an input the graph lacks: keep
        # it as an input that adds zero to the lengths.
        outputs = block(ids, types, valid_length + mx.sym.sum(types * 0, axis=-1))
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if len(outputs) != len(spec):
        raise RuntimeError(f'{type(block).__name__} has {len(outputs)} outputs, expected '
                           f'{[name for name, _ in spec]}')
    named = mx.sym.Group([mx.sym.identity(out, name=_placeholder(name))
                          for out, (name, _) in zip(outputs, spec)])
    return mx.sym.load_json(make_portable(named.tojson()))


def _group(outputs):
    """A block's symbolic output(s) as one Symbol."""
    return mx.sym.Group(list(outputs)) if isinstance(outputs, (list, tuple)) else outputs


def _placeholder(name):
    # mx2onnx derives output names from MXNet's '<node>_output' names but reads a name ending
    # in '_state_output' as an RNN state and renames it (last_hidden_state -> last_hidden1).
    # The identities get a neutral suffix, removed again by `_rename_outputs`.
    return f'{name}{_SUFFIX}'


def _rename_outputs(model, spec):
    """Graph outputs (and the nodes producing them) from their placeholders to `spec`'s names."""
    renames = {_placeholder(name): name for name, _ in spec}
    for value in model.graph.output:
        if value.name not in renames:
            raise RuntimeError(f'unexpected graph output {value.name}; expected '
                               f'{sorted(renames)}')
        value.name = renames[value.name]
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    by_name = {value.name: value for value in model.graph.output}
    ordered = [by_name[name] for name, _ in spec]  # mx2onnx orders outputs by node position
    del model.graph.output[:]
    model.graph.output.extend(ordered)


def _convert(symbol, params, shape, opset):
    """mx2onnx's graph of `symbol` as an ONNX ModelProto declaring `opset`."""
    from onnx import TensorProto, helper
    # The graph builder is called directly rather than mxnet.onnx.export_model, which always
    # declares the installed onnx's newest opset (22 for onnx 1.17) while translating operators
    # with their opset-13 definitions: ReduceMean with an `axes` attribute (LayerNorm, mean
    # pooling) is then invalid and onnx's checker refuses the graph.
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    inputs = [name for name in symbol.list_inputs() if name not in params]
    if sorted(inputs) != sorted(INPUT_NAMES):
        raise RuntimeError(f'unexpected free inputs in the graph: {inputs}')
    with _checker_at_opset(opset):
        graph = MXNetGraph().create_onnx_graph_proto(
            symbol, params, in_shapes=[shape] * len(inputs),
            in_types=[TensorProto.INT64] * len(inputs), opset_version=opset, dynamic=False)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)],
                              producer_name='gluonbert')
    return model


@contextlib.contextmanager
def _checker_at_opset(opset):
    """Make `onnx.checker.check_graph` check against `opset` for the duration.

    mx2onnx ends its graph builder with `checker.check_graph(graph)`, whose default context is
    the installed onnx's newest opset (22), which rejects valid opset-13 nodes (see `_convert`).
    The whole model is checked at its declared opset by `onnx.checker.check_model` afterwards."""
    from onnx import checker
    original = checker.check_graph

    def check_graph_at_opset(graph, ctx=None, lexical_scope_ctx=None):
        context = checker.C.CheckerContext()
        context.ir_version = checker.IR_VERSION
        context.opset_imports = {'': opset}
        return original(graph, context)

    checker.check_graph = check_graph_at_opset
    try:
        yield
    finally:
        checker.check_graph = original


def _name_axes(model, in_dims, spec, shape, dynamic):
    """Declare each input's and output's shape: HF's axis names where dynamic, else the sample
    sizes; model-fixed sizes (units, classes) as numbers."""
    sizes = dict(zip(in_dims, shape))
    for value in model.graph.input:
        _set_dims(value, [name if dynamic else sizes[name] for name in in_dims])
    outputs = {value.name: value for value in model.graph.output}
    for name, dims in spec:
        declared = outputs[name].type.tensor_type.shape.dim
        fixed = [d.dim_value for d in declared]  # mx2onnx's inferred sample shape
        _set_dims(outputs[name], [fixed[i] if dim is None else dim if dynamic else sizes[dim]
                                  for i, dim in enumerate(dims)])


def _set_dims(value, dims):
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, str):
            entry.dim_param = dim
        else:
            entry.dim_value = int(dim)


def _order_inputs(model):
    """Graph inputs in HF's order (input_ids, attention_mask, token_type_ids)."""
    by_name = {value.name: value for value in model.graph.input}
    ordered = [by_name[name] for name in INPUT_NAMES]
    del model.graph.input[:]
    model.graph.input.extend(ordered)


SIMPLIFIED_OPS = ('Reshape', 'slice_like', 'broadcast_like')


def node_facts(symbol: mx.sym.Symbol, shape: tuple[int, ...]
               ) -> dict[str, tuple[str, dict, list[int]]]:
    """{MXNet node name: (op, attrs, [rank of each input])} for the nodes of `symbol` that
    `simplify_reshapes` and `simplify_shape_like` rewrite, with every input of `shape` (the
    ranks come from MXNet's shape inference on the sample)."""
    internals = symbol.get_internals()
    _, shapes, _ = internals.infer_shape(**{name: shape for name in INPUT_NAMES})
    shape_of = dict(zip(internals.list_outputs(), shapes))
    nodes = json.loads(symbol.tojson())['nodes']

    def rank(entry):
        parent = nodes[entry[0]]
        if parent['op'] == 'null':
            return len(shape_of[parent['name']])
        outputs = [n for n in shape_of if n.startswith(f"{parent['name']}_output")]
        suffix = str(entry[1]) if len(outputs) > 1 else ''
        return len(shape_of[f"{parent['name']}_output{suffix}"])
    return {node['name']: (node['op'], node.get('attrs', {}), [rank(e) for e in node['inputs']])
            for node in nodes if node['op'] in SIMPLIFIED_OPS}


def _int_tuple(text):
    """MXNet's '(1, -1)' / '[0]' / 'None' attribute -> tuple of ints, or None."""
    text = text.strip('()[] ')
    if text in ('', 'None'):
        return None
    return tuple(int(d) for d in text.split(',') if d.strip())


def simplify_reshapes(graph: GraphProto, facts: dict[str, tuple[str, dict, list[int]]]) -> int:
    """Replace mx2onnx's generic Reshape translation by a plain equivalent; returns how many.

    mx2onnx translates MXNet's Reshape (unless `reverse='False'` is spelled out in the graph)
    into a shape computation of ~20 nodes (Shape, Pad, Where, Slice) feeding the Reshape.
    onnxruntime runs it, but OpenVINO fails to compile it ("get_partial_shape().same_scheme(
    value.get_shape())"). Two plain forms cover every Reshape of gluonbert's graphs:
    - targets of sizes, 0 (copy the input's size at that index) and -1 (infer), not reversed:
      ONNX Reshape has the same semantics, so the target becomes a constant;
    - (-3, 0) on a rank-3 input (merge the first two axes: the attention bias, multiple-choice
      inputs): ONNX Flatten(axis=2).
    Anything else keeps mx2onnx's translation. The dead shape computation is pruned after."""
    from onnx import helper, numpy_helper
    replaced = 0
    for i, node in enumerate(graph.node):
        if node.op_type != 'Reshape' or facts.get(node.name, ('',))[0] != 'Reshape':
            continue
        _, attrs, (rank,) = facts[node.name]
        target, reverse = _int_tuple(attrs.get('shape', 'None')), attrs.get('reverse') == 'True'
        if target is None:
            continue
        if not reverse and all(d >= -1 for d in target):
            constant = numpy_helper.from_array(np.array(target, dtype=np.int64),
                                               name=f'{node.name}_plain_shape')
            graph.initializer.append(constant)
            node.input[1] = constant.name
        elif target == (-3, 0) and rank == 3 and not reverse:
            flatten = helper.make_node('Flatten', [node.input[0]], list(node.output),
                                       name=node.name, axis=2)
            graph.node.remove(node)
            graph.node.insert(i, flatten)
        else:
            continue
        replaced += 1
    return replaced


def simplify_shape_like(graph: GraphProto, facts: dict[str, tuple[str, dict, list[int]]]
                        ) -> int:
    """Replace mx2onnx's slice_like / broadcast_like translations (with axes) by plain ones;
    returns how many.

    mx2onnx computes their target shape with GatherND + ScatterND on shape tensors. OpenVINO
    cannot infer shapes through ScatterND, so with static input shapes the position-embedding
    slice and the attention bias get undefined shapes and the CPU plugin refuses the model
    ("Can not create StaticMemory object"). The plain forms: Slice(data, 0, Shape(like)[axes],
    axes) and Expand(lhs, shape with rhs's sizes at lhs_axes and 1 elsewhere)."""
    from onnx import helper, numpy_helper
    producers = {out: node for node in graph.node for out in node.output}
    replaced = 0

    def constant(name, values):
        graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64),
                                                         name=name))
        return name

    for name, (op, attrs, ranks) in facts.items():
        final = producers.get(name)
        if op == 'slice_like':
            axes = _int_tuple(attrs.get('axes', 'None'))
            shape_node = producers.get(f'{name}_shape_1')
            if (axes is None or final is None or final.op_type != 'Slice' or shape_node is None
                    or (ranks[0] != ranks[1] and min(axes) < 0)):  # negative: of which rank?
                continue
            axes = [a + ranks[0] if a < 0 else a for a in axes]
            new = [helper.make_node('Shape', [shape_node.input[0]], [f'{name}_plain_like']),
                   helper.make_node('Gather', [f'{name}_plain_like',
                                               constant(f'{name}_plain_axes', axes)],
                                    [f'{name}_plain_ends'], axis=0),
                   helper.make_node('Slice', [final.input[0],
                                              constant(f'{name}_plain_starts', [0] * len(axes)),
                                              f'{name}_plain_ends', f'{name}_plain_axes'],
                                    [name], name=name)]
        elif op == 'broadcast_like':
            lhs_axes = _int_tuple(attrs.get('lhs_axes', 'None'))
            rhs_axes = _int_tuple(attrs.get('rhs_axes', 'None'))
            shape_node = producers.get(f'{name}_rhs_shape')
            if (lhs_axes is None or rhs_axes is None or final is None
                    or final.op_type != 'Expand' or shape_node is None):
                continue
            lhs_axes = [a + ranks[0] if a < 0 else a for a in lhs_axes]
            rhs_axes = [a + ranks[1] if a < 0 else a for a in rhs_axes]
            new = [helper.make_node('Shape', [shape_node.input[0]], [f'{name}_plain_rhs'])]
            pieces = []
            for axis in range(ranks[0]):
                if axis in lhs_axes:
                    source = rhs_axes[lhs_axes.index(axis)]
                    new.append(helper.make_node(
                        'Gather', [f'{name}_plain_rhs', constant(f'{name}_plain_{axis}',
                                                                 [source])],
                        [f'{name}_plain_dim{axis}'], axis=0))
                    pieces.append(f'{name}_plain_dim{axis}')
                else:  # Expand broadcasts a 1 to the input's own size
                    pieces.append(constant(f'{name}_plain_{axis}', [1]))
            new += [helper.make_node('Concat', pieces, [f'{name}_plain_shape'], axis=0),
                    helper.make_node('Expand', [final.input[0], f'{name}_plain_shape'],
                                     [name], name=name)]
        else:
            continue
        position = list(graph.node).index(final)
        graph.node.remove(final)
        for offset, node in enumerate(new):
            graph.node.insert(position + offset, node)
        replaced += 1
    return replaced


def prune_dead_nodes(graph: GraphProto) -> int:
    """Drop nodes whose outputs nothing reads (and that are no graph output); returns how many."""
    dropped = 0
    while True:
        read = {name for node in graph.node for name in node.input}
        read.update(value.name for value in graph.output)
        dead = [node for node in graph.node if not any(out in read for out in node.output)]
        if not dead:
            return dropped
        for node in dead:
            graph.node.remove(node)
        dropped += len(dead)


def prune_initializers(graph: GraphProto) -> int:
    """Drop initializers no node reads (mx2onnx leaves the constants of some translations, e.g.
    LayerNorm's unused axes, and onnxruntime warns about each); returns how many were dropped."""
    used = {name for node in graph.node for name in node.input}
    used.update(value.name for value in graph.output)
    kept = [init for init in graph.initializer if init.name in used]
    dropped = len(graph.initializer) - len(kept)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return dropped


def _require_onnxruntime():
    if importlib.util.find_spec('onnxruntime') is None:
        raise ImportError('int8=True quantizes with onnxruntime, which is not installed: '
                          'pip install onnxruntime')


def _write_atomically(model, path, int8):
    """Save `model` (quantized to int8 when asked) to `path` through a temporary file in the
    same folder (gluonbert.files), so `path` is either the old file or the complete new one."""
    import onnx

    def write(temp):
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            # Per-channel scales: per-tensor ones gave MiniLM sentence embeddings a cosine of
            # 0.83-0.97 to float32, per-channel 0.97-0.99. Reduced range (7-bit weights) avoids
            # the u8s8 saturation of CPUs without VNNI and cost nothing measurable here.
            quantize_dynamic(model, temp, weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True)
        else:
            onnx.save(model, temp)
    write_with(path, write, suffix='.onnx')


def describe(path: str) -> dict:
    """{'inputs': {name: dims}, 'outputs': {name: dims}, 'opset': int} of an ONNX file."""
    import onnx
    model = onnx.load(path, load_external_data=False)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    return {'inputs': {v.name: dims(v) for v in model.graph.input},
            'outputs': {v.name: dims(v) for v in model.graph.output}, 'opset': opset}


__all__ = ['DEFAULT_OPSET', 'INPUT_NAMES', 'SUPPORTED_OPSETS', 'describe', 'export_onnx']
