"""Fast inference modes agree with float32: int8 (oneDNN, calibrated) and bfloat16 (AMP)."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import cli
from gluonbert.data import BERTTokenizer, read_table
from gluonbert.export import export_model, import_model
from gluonbert.inference import SentenceClassifier, _inputs
from gluonbert.data.transforms import BERTSentenceTransform
from gluonbert.precision import UnsupportedPrecisionError, bfloat16_supported, cpu_flags
from gluonbert.quantization import quantize

from conftest import REPO, SLICE


def sentences(name, count):
    """The first `count` sentences of the committed SST-2 slice file `name`."""
    return [row[0] for row in read_table(os.path.join(SLICE, name), ['sentence'])][:count]


@pytest.fixture(scope='module')
def minilm():
    """The real embedded MiniLM encoder (no heads), its tokenizer and a batch maker."""
    bert, vocab = gluonbert.get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2',
                                      pretrained=True, use_pooler=False, use_decoder=False,
                                      use_classifier=False)
    bert.hybridize(static_alloc=True)
    transform = BERTSentenceTransform(BERTTokenizer(vocab), 64, pad=False, pair=False)

    def batches(texts, size=16):
        return [[a.astype('int32') for a in _inputs(transform, texts[i:i + size], mx.cpu())]
                for i in range(0, len(texts), size)]
    return bert, batches


def mean_pooled(net, batches):
    """Mean of each sentence's valid token vectors -> (N, units) numpy."""
    out = []
    for ids, types, lengths in batches:
        seq = net(ids, types, lengths)
        seq = seq[0] if isinstance(seq, (list, tuple)) else seq
        out.append((seq.sum(axis=1) / lengths.astype('float32').reshape((-1, 1))).asnumpy())
    return np.concatenate(out)


def test_int8_minilm_embeddings_agree_with_float32(minilm):
    bert, batches = minilm
    calib = batches(sentences('train.tsv', 64))
    qnet = quantize(bert, calib)
    test = batches(sentences('dev.tsv', 48))  # other sentences, other lengths than calibration
    ref, got = mean_pooled(bert, test), mean_pooled(qnet, test)
    cosine = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    # int8 with min/max calibration: seen 0.959 / 0.978 on this slice (fp32 vs fp32 is 1.0)
    assert cosine.min() > 0.95, cosine.min()
    assert cosine.mean() > 0.97, cosine.mean()
    assert not np.allclose(ref, got, atol=1e-4)  # it really is a different (int8) computation


def test_int8_model_exports_and_reimports_unchanged(minilm, tmp_path):
    bert, batches = minilm
    qnet = quantize(bert, batches(sentences('train.tsv', 16)), granularity='tensor-wise')
    sample = batches(sentences('dev.tsv', 4))[0]
    symbol_file, _ = export_model(qnet, str(tmp_path / 'int8'), sample)
    with open(symbol_file, encoding='utf-8') as f:
        assert '_sg_mkldnn_fully_connected' in f.read()
    again = import_model(str(tmp_path / 'int8'))
    np.testing.assert_allclose(again(*sample).asnumpy(), qnet(*sample).asnumpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('batches, message', [
    ([], 'at least one calibration batch'),
    ([(mx.nd.ones((2, 5)), mx.nd.ones((2, 4)), mx.nd.ones((2,)))], 'expected input_ids'),
    ([mx.nd.ones((2, 5))], r'must be \(input_ids, token_types, valid_length\)'),
])
def test_quantize_rejects_bad_calibration_data(batches, message):
    from conftest import tiny_model
    with pytest.raises(ValueError, match=message):
        quantize(tiny_model(use_decoder=False, use_classifier=False), batches)


def test_quantize_rejects_a_model_vocab_tuple_and_unknown_modes():
    from conftest import tiny_model
    net = tiny_model(use_decoder=False, use_classifier=False)
    with pytest.raises(TypeError, match='pass the model'):
        quantize((net, None), [])
    with pytest.raises(ValueError, match='calib_mode'):
        quantize(net, [], calib_mode='minmax')


def _export_tiny_classifier(folder):
    """A float32 export folder as finetune_classifier.py writes it, with a real vocab."""
    bert, vocab = gluonbert.get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                                      use_classifier=False, hparam_allow_override=True,
                                      num_layers=1, units=64, hidden_size=128, num_heads=2)
    net = gluonbert.BERTClassifier(bert, num_classes=2)
    net.initialize(mx.init.Normal(0.2), force_reinit=True)
    sample = [a.astype('int32') for a in gluonbert.export.sample_inputs(len(vocab), 2, 8)]
    export_model(net, os.path.join(folder, 'model'), sample)
    vocab.to_file(os.path.join(folder, 'vocab.txt'))
    gluonbert.files.write_json(os.path.join(folder, 'meta.json'), dict(
        task='SST-2', labels=['0', '1'], regression=False, max_len=32, lower=True,
        model='bert_2_128_2'))


def test_quantize_cli_writes_an_int8_folder_that_predicts_like_float32(tmp_path, capsys):
    _export_tiny_classifier(str(tmp_path / 'fp32'))
    assert cli.main(['quantize', '--model-dir', str(tmp_path / 'fp32'), '--calib-file',
                     os.path.join(SLICE, 'train.tsv'), '--calib-samples', '64', '--output',
                     str(tmp_path / 'int8')]) == 0
    assert 'calibrated on 64 sentences' in capsys.readouterr().out
    texts = sentences('dev.tsv', 40)
    fp32 = SentenceClassifier(str(tmp_path / 'fp32')).predict_proba(texts)
    int8 = SentenceClassifier(str(tmp_path / 'int8'))
    assert int8.meta['precision'] == 'int8'
    probs = int8.predict_proba(texts)
    assert np.abs(probs - fp32).max() < 0.05
    assert np.abs(probs - fp32).max() > 0  # really int8, not the float32 graph again
    with pytest.raises(FileExistsError):  # never overwrites silently
        cli.run(['quantize', '--model-dir', str(tmp_path / 'fp32'), '--calib-file',
                 os.path.join(SLICE, 'train.tsv'), '--output', str(tmp_path / 'int8')])


def test_bfloat16_runs_where_onednn_has_kernels_and_says_why_not_elsewhere(tmp_path):
    name, flags = cpu_flags()
    if 'avx512f' not in flags:  # oneDNN 2.4 has no bf16 kernels below AVX-512
        assert not bfloat16_supported()
    _export_tiny_classifier(str(tmp_path / 'fp32'))
    texts = sentences('dev.tsv', 16)
    fp32 = SentenceClassifier(str(tmp_path / 'fp32')).predict_proba(texts)
    if not bfloat16_supported():
        with pytest.raises(UnsupportedPrecisionError, match='AVX-512') as err:
            SentenceClassifier(str(tmp_path / 'fp32'), precision='bfloat16')
        assert name in str(err.value)
        return
    bf16 = SentenceClassifier(str(tmp_path / 'fp32'), precision='bfloat16').predict_proba(texts)
    assert np.abs(bf16 - fp32).max() < 0.05  # bf16 keeps 8 bits of mantissa


def test_the_bfloat16_graph_converts_and_type_checks_on_any_cpu():
    """to_bfloat16's rewrite is built and type-inferred here even where it cannot run: oneDNN's
    fused Dense (+ GELU) in bfloat16 with bfloat16 weights; attention scores, softmax and
    LayerNorm in float32."""
    from conftest import random_batch, tiny_model
    from gluonbert.precision import _amp_convert
    converted = _amp_convert(tiny_model(use_decoder=False, use_classifier=False), random_batch())
    data, symbol = converted._cached_graph
    graph = symbol.get_internals()
    _, types, _ = graph.infer_type(**{d.name: 'float32' for d in data})
    dtype = dict(zip(graph.list_outputs(), (np.dtype(t) for t in types)))
    bfloat16 = np.dtype([('bfloat16', np.uint16)])
    ops = {}
    for node in json.loads(symbol.tojson())['nodes']:
        ops.setdefault(node['op'], set()).add(dtype[node['name'] + '_output'] if node['op']
                                              != 'null' else None)
    assert 'LeakyReLU' not in ops and 'FullyConnected' not in ops  # all fused
    assert ops['_sg_mkldnn_fully_connected'] == {bfloat16}
    for exact in ('_sg_mkldnn_selfatt_qk', 'softmax', '_sg_mkldnn_selfatt_valatt'):
        assert ops[exact] == {np.dtype(np.float32)}, exact
    # gluonbert's LayerNorm kernel, or MXNet's where the kernel is off or cannot be built
    assert ops.get('_gluonbert_layer_norm', set()) | ops.get('LayerNorm', set()) == \
        {np.dtype(np.float32)}
    params = converted.collect_params()
    dense = [name for name in params if name.endswith(('qkv_weight', 'ffn_1_weight'))]
    assert len(dense) == 4 and {params[n].dtype for n in dense} == {bfloat16}  # cast once
    assert {p.dtype for n, p in params.items() if n.endswith('norm_gamma')} == {np.float32}


def test_optimize_for_cpu_fuses_without_changing_the_outputs(minilm, tmp_path):
    bert, batches = minilm
    sample = batches(sentences('dev.tsv', 8))[0]
    fused = gluonbert.optimize_for_cpu(bert, sample)
    other = batches(sentences('dev.tsv', 40))[2]  # another length than the sample's
    np.testing.assert_allclose(fused(*other).asnumpy(), bert(*other).asnumpy(), atol=1e-4)
    symbol_file, _ = export_model(fused, str(tmp_path / 'fused'), sample)
    with open(symbol_file, encoding='utf-8') as f:
        assert '_sg_mkldnn_selfatt_qk' in f.read()


def test_precision_accuracy_script_reports_int8_and_bfloat16_or_why_not(tmp_path):
    """scripts/precision_accuracy.py: float32, int8 and bf16 accuracies on labelled rows; bf16
    is skipped with the CPU named where oneDNN has no bf16 kernels."""
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    import precision_accuracy
    _export_tiny_classifier(str(tmp_path / 'fp32'))
    dev = os.path.join(SLICE, 'dev.tsv')
    results = precision_accuracy.main([
        '--model-dir', str(tmp_path / 'fp32'), '--dev-file', dev, '--calib-file',
        os.path.join(SLICE, 'train.tsv'), '--calib-samples', '32', '--json',
        str(tmp_path / 'acc.json')])
    labels = [row[1] for row in read_table(dev, ['sentence'], label_field='label')]
    fp32 = SentenceClassifier(str(tmp_path / 'fp32')).predict(
        [row[0] for row in read_table(dev, ['sentence'])])
    assert results['float32']['accuracy'] == np.mean([p == y for p, y in zip(fp32, labels)])
    assert results['dev_samples'] == len(labels) and results['calib_samples'] == 32
    expected = {'int8', 'bfloat16'} if bfloat16_supported() else {'int8'}
    assert {p for p in ('int8', 'bfloat16') if p in results} == expected
    for precision in expected:
        row = results[precision]
        assert row['difference_points'] == round(100 * (row['accuracy'] -
                                                        results['float32']['accuracy']), 2)
    if not bfloat16_supported():
        assert 'AVX-512' in results['skipped']['bfloat16']
    assert json.loads((tmp_path / 'acc.json').read_text())['float32'] == results['float32']


@pytest.mark.skipif(not bfloat16_supported(), reason='no bf16 kernels in oneDNN on this CPU '
                    '(needs AVX-512)')
def test_to_bfloat16_keeps_the_given_model_and_takes_other_shapes():
    """The bf16 copy answers at shapes other than its sample's, close to fp32; the fp32 model
    given to it still gives its own outputs afterwards."""
    from conftest import random_batch, tiny_model
    model = tiny_model(use_decoder=False, use_classifier=False)
    other = random_batch(4, 20, seed=3)
    before = [o.asnumpy() for o in model(*other)]
    bf16 = gluonbert.to_bfloat16(model, random_batch(2, 8, seed=1))
    after = [o.asnumpy() for o in model(*other)]
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for low, exact in zip(bf16(*other), before):
        assert low.dtype == np.float32 and low.shape == exact.shape
        assert np.abs(low.asnumpy() - exact).max() < 0.05


def test_min_max_is_quantize_default_and_entropy_differs():
    """quantize calibrates with min/max by default; KL thresholds ('entropy') give other
    activation ranges; both agree with fp32."""
    from conftest import random_batch, tiny_model
    model = tiny_model(use_decoder=False, use_classifier=False)
    calib = [random_batch(4, 16, seed=s) for s in range(3)]
    test = random_batch(3, 12, seed=9)
    exact = model(*test)[0].asnumpy()
    outputs = {}
    for mode in ('entropy', 'naive', None):
        kwargs = {} if mode is None else dict(calib_mode=mode)
        outputs[mode] = quantize(model, calib, **kwargs)(*test)[0].asnumpy()
        assert np.abs(outputs[mode] - exact).max() < 0.25, mode
    np.testing.assert_array_equal(outputs[None], outputs['naive'])
    assert np.abs(outputs['entropy'] - outputs['naive']).max() > 1e-5  # other thresholds


def test_arrays_from_lists_do_not_warn_with_scipy_installed():
    """scipy (for entropy calibration) makes MXNet 1.9.1 touch the deprecated
    scipy.sparse.csr namespace in every mx.nd.array call; gluonbert's import routes it around,
    and sparse arrays from scipy still convert."""
    import warnings

    import scipy.sparse
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert mx.nd.array([[1, 2]]).asnumpy().tolist() == [[1, 2]]
        csr = mx.nd.array(scipy.sparse.csr_matrix(np.eye(3, dtype=np.float32)))
    assert csr.stype == 'csr' and csr.asnumpy().tolist() == np.eye(3).tolist()


def test_predict_sorts_by_length_inside_but_answers_in_input_order(tmp_path):
    """Batches are formed from texts of similar length; each answer still belongs to its text
    (equal to that text predicted alone)."""
    _export_tiny_classifier(str(tmp_path / 'fp32'))
    classifier = SentenceClassifier(str(tmp_path / 'fp32'))
    texts = sentences('dev.tsv', 12)
    assert len({len(t.split()) for t in texts}) > 3  # lengths differ: sorting reorders them
    together = classifier.predict_proba(texts, batch_size=4)
    alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match='at least one text'):
        classifier.predict_proba([])
