"""scripts/benchmark.py on a tiny model: every variant is checked, then timed; a peer whose
weights differ is refused; peak memory is the probe's own."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')
pytest.importorskip('gluonnlp')

SCRIPT = os.path.join(REPO, 'scripts', 'benchmark.py')
MODEL = 'bert_2_128_2'


def load_script():
    """scripts/benchmark.py as a module."""
    spec = importlib.util.spec_from_file_location('benchmark_script', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_script()


@pytest.fixture(name='torch_threads')
def fixture_torch_threads(monkeypatch):
    """main() sets OMP_NUM_THREADS and torch's thread count; give both back afterwards."""
    monkeypatch.setenv('OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS', '1'))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_tiny_run_checks_and_times_every_variant(tmp_path, torch_threads):
    path = tmp_path / 'out' / 'bench.json'
    bench.main(['--models', MODEL, '--shapes', '2x16', '--repeats', '1', '--warmup', '1',
                '--no-memory', '--levers', '--json', str(path)])
    report = json.loads(path.read_text())
    assert report['gemm_peak_gflops'] > 0 and report['versions']['gluonnlp'] == '0.10.0'
    result = report['models'][MODEL]
    variants = {bench.OURS, bench.INT8, bench.LEVER, bench.HF, bench.NLP}
    assert set(result['inference']['2x16']) == variants
    assert set(result['train']) == {bench.OURS, bench.HF, bench.NLP}
    for row in list(result['inference']['2x16'].values()) + list(result['train'].values()):
        assert row['seconds'] > 0 and row['seq_per_s'] > 0 and all(t > 0 for t in row['times'])
    assert set(result['inference']['2x16'][bench.OURS]['vs']) == {bench.HF, bench.NLP}
    checks = result['agreement']['2x16']
    assert set(checks) == variants - {bench.OURS} and all(c['passed'] for c in checks.values())
    assert checks[bench.HF]['max_abs_diff'] < bench.FP32_ATOL
    assert checks[bench.INT8]['min_cosine'] > bench.INT8_MIN_COSINE
    assert not any(name.startswith('.benchmark-') for name in os.listdir(path.parent))


def test_agreement_check_refuses_a_peer_with_perturbed_weights(tmp_path):
    net, vocab, _ = bench.build_gluonbert(MODEL)
    hf = bench.hf_model(net, vocab, str(tmp_path), 'BertModel').eval()
    inputs = bench.make_inputs(len(vocab), 2, 16, seed=0)
    expected = bench.mx_runner(net, bench.mx_inputs(inputs))(fetch=True)
    run_hf = bench.hf_runner(hf, bench.hf_inputs(inputs))
    assert bench.check_agreement(bench.HF, expected, run_hf(fetch=True))['passed']
    with torch.no_grad():
        hf.encoder.layer[1].output.dense.weight.mul_(1.05)
    with pytest.raises(bench.AgreementError, match='HF torch disagrees.*no speed without the '
                                                   'same answer'):
        bench.check_agreement(bench.HF, expected, run_hf(fetch=True))


def test_int8_check_needs_pooled_outputs_pointing_the_same_way():
    rng = np.random.RandomState(0)
    expected = [rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 8))]
    noisy = [expected[0] + 0.5, expected[1] + rng.normal(0, 1e-3, size=(2, 8))]
    assert bench.check_agreement('int8', expected, noisy, atol=None, min_cosine=0.99)['passed']
    with pytest.raises(bench.AgreementError, match='pooled output min cosine -1.0'):
        bench.check_agreement('int8', expected, [expected[0], -expected[1]], atol=None,
                              min_cosine=0.99)


def test_a_disagreeing_int8_variant_is_refused_and_left_untimed_but_fp32_ones_stop_the_run():
    expected = [np.ones((1, 2, 4)), np.array([[1.0, 2.0, 3.0, 4.0]])]
    flipped = [expected[0], -expected[1]]
    runners = {bench.OURS: lambda fetch=False: expected, bench.INT8: lambda fetch=False: flipped,
               bench.HF: lambda fetch=False: expected}
    checks = bench.agreement(runners)
    assert not checks[bench.INT8]['passed'] and 'cosine' in checks[bench.INT8]['refused']
    assert checks[bench.HF]['passed'] and set(runners) == {bench.OURS, bench.HF}
    runners[bench.NLP] = lambda fetch=False: [expected[0] + 0.01, expected[1]]
    with pytest.raises(bench.AgreementError, match='GluonNLP disagrees'):
        bench.agreement(runners)


def test_flops_of_bert_base_at_128_tokens():
    config = dict(units=768, hidden_size=3072, num_layers=12)
    assert bench.flops(config, 128) == pytest.approx(22.35e9, rel=1e-3)


def test_memory_probe_reports_its_own_peak_not_the_parent_one():
    net, vocab, _ = bench.build_gluonbert(MODEL, weights=False)
    config = dict(hparams=net.config, hf=None)
    done = subprocess.run([sys.executable, SCRIPT, '--memory-probe', 'gluonbert', 'infer', MODEL,
                           '--probe-config', json.dumps(config)], capture_output=True, text=True,
                          check=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    words = done.stdout.split()
    peak = float(words[words.index('peak_rss_mb') + 1])
    # this test process has MXNet, torch, transformers and GluonNLP loaded; the probe only MXNet
    assert 50 < peak < bench.peak_rss_mb()
