"""gluonbert.benchmark on a tiny model: every variant, the optional deployment runtimes included,
is checked, then timed, or skipped with its reason; a peer whose weights differ is refused; the
report names the CPU's flags; peak memory is the probe's own."""
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

from gluonbert.benchmark import cli, gluonbert_peer, memory, onnx_peers, peers, torch_peer
from gluonbert.benchmark.agreement import AgreementError, agreement, check_agreement
from gluonbert.benchmark.inputs import make_inputs
from gluonbert.benchmark.timing import flops
from gluonbert.benchmark.variants import (BF16, BF16_TRAIN, FP32_ATOL, HF, HF_BF16, INT8,
                                          INT8_MIN_COSINE, LEVER, NLP, ORT_FP32, ORT_INT8, OURS,
                                          OV_BF16, OV_FP32, precision_of)
from gluonbert.precision import bfloat16_supported, cpu_flags

SCRIPT = os.path.join(REPO, 'scripts', 'benchmark.py')
MODEL = 'bert_2_128_2'
OPTIONAL = {BF16, HF_BF16, ORT_FP32, ORT_INT8, OV_FP32, OV_BF16}


@pytest.fixture(name='torch_threads')
def fixture_torch_threads(monkeypatch):
    """main() sets OMP_NUM_THREADS and torch's thread count; give both back afterwards."""
    monkeypatch.setenv('OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS', '1'))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def runnable_here(name):
    """Whether an optional peer's packages are installed and the CPU has its precision."""
    peer = next(p for p in peers.OPTIONAL_PEERS if p.name == name)
    installed = all(importlib.util.find_spec(package) for package in peer.packages)
    native_bf16 = bool({'avx512_bf16', 'amx_bf16'} & cpu_flags()[1])
    return installed and (peer.precision != 'bf16' or native_bf16)


def test_tiny_run_checks_and_times_every_variant(tmp_path, torch_threads, capsys):
    path = tmp_path / 'out' / 'bench.json'
    cli.main(['--models', MODEL, '--shapes', '2x16', '--repeats', '1', '--warmup', '1',
              '--no-memory', '--levers', '--json', str(path)])
    markdown = capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report['peaks']['gemm_fp32'] > 0 and report['versions']['gluonnlp'] == '0.10.0'
    result = report['models'][MODEL]
    # rates against the multiply-add peak of each variant's own precision (where measured)
    fma = report['peaks']['fma']
    if fma:
        assert fma['fp32'] > 0
        assert '- multiply-add peak, GFLOP/s on the threads above: fp32 ' in markdown
    else:
        assert report['peaks']['fma_note'] and '- multiply-add peak: not measured' in markdown
    for name, row in result['inference']['2x16'].items():
        rate = fma.get(precision_of(name))
        assert row['pct_fma_peak'] == (pytest.approx(100 * row['gflops'] / rate) if rate
                                       else None)
    timed = set(result['inference']['2x16'])
    ran = timed & OPTIONAL
    # every optional peer either ran or says why not, and it ran wherever it can
    assert ran | set(report['skipped']) == OPTIONAL and not ran & set(report['skipped'])
    assert all(report['skipped'].values())
    assert ran == {name for name in OPTIONAL if runnable_here(name)}
    assert timed == {OURS, INT8, LEVER, HF, NLP} | ran
    # the bf16 (AMP) fine-tuning step where MXNet's oneDNN has bf16, against our fp32 step
    assert set(result['train']) == {OURS, HF, NLP} | ({BF16_TRAIN} if bfloat16_supported() else
                                                      set())
    if bfloat16_supported():
        bf16_step = result['train'][BF16_TRAIN]
        assert bf16_step['vs'][OURS] == pytest.approx(result['train'][OURS]['seconds'] /
                                                      bf16_step['seconds'])
        assert 'x gluonbert fp32' in markdown
    for row in list(result['inference']['2x16'].values()) + list(result['train'].values()):
        assert row['seconds'] > 0 and row['seq_per_s'] > 0 and all(t > 0 for t in row['times'])
    assert set(result['inference']['2x16'][OURS]['vs']) == {HF, NLP}
    checks = result['agreement']['2x16']
    assert set(checks) == timed - {OURS} and all(c['passed'] for c in checks.values())
    for name in {HF, NLP, LEVER, ORT_FP32, OV_FP32} & timed:  # fp32: the tight limit
        assert checks[name]['max_abs_diff'] < FP32_ATOL and checks[name]['atol'] == FP32_ATOL
    for name in {INT8, BF16, HF_BF16, ORT_INT8, OV_BF16} & timed:  # int8, bf16: the cosine
        assert checks[name]['atol'] is None and checks[name]['cosine_limit'] == INT8_MIN_COSINE
        assert INT8_MIN_COSINE < checks[name]['min_cosine'] <= 1 + 1e-6
    # the machine's CPU flags and every runtime's threads, in the JSON and the markdown
    flags = sorted(cpu_flags()[1])
    assert report['machine']['cpu_flags'] == flags and f'- CPU flags: {" ".join(flags)}' in markdown
    threads = report['machine']['threads']
    assert set(threads.values()) == {int(os.environ['OMP_NUM_THREADS'])}
    assert 'OpenVINO INFERENCE_NUM_THREADS' in threads and 'intra_op_num_threads' in markdown
    for name, reason in report['skipped'].items():
        assert f'- not run: {name} ({reason})' in markdown
    assert not any(name.startswith('.benchmark-') for name in os.listdir(path.parent))


def tiny_twins(folder):
    """(gluonbert net, its HF twin with the same weights, vocab) of the tiny model."""
    net, vocab, _ = gluonbert_peer.build_gluonbert(MODEL)
    return net, torch_peer.hf_model(net, vocab, str(folder), 'BertModel').eval(), vocab


def test_agreement_check_refuses_a_peer_with_perturbed_weights(tmp_path):
    net, hf, vocab = tiny_twins(tmp_path)
    inputs = make_inputs(len(vocab), 2, 16, seed=0)
    expected = gluonbert_peer.mx_runner(net, gluonbert_peer.mx_inputs(inputs))(fetch=True)
    run_hf = torch_peer.hf_runner(hf, torch_peer.hf_inputs(inputs))
    assert check_agreement(HF, expected, run_hf(fetch=True))['passed']
    with torch.no_grad():
        hf.encoder.layer[1].output.dense.weight.mul_(1.05)
    with pytest.raises(AgreementError, match='HF torch disagrees.*no speed without the '
                                             'same answer'):
        check_agreement(HF, expected, run_hf(fetch=True))


def test_onnx_runtimes_are_refused_when_their_file_has_other_weights(tmp_path):
    pytest.importorskip('onnxruntime')
    net, hf, vocab = tiny_twins(tmp_path)
    exported_with = make_inputs(len(vocab), 1, 8, seed=1)
    good = torch_peer.export_onnx(hf, exported_with, str(tmp_path / 'good' / 'model.onnx'))
    with torch.no_grad():
        hf.encoder.layer[1].output.dense.weight.mul_(1.05)
    bad = torch_peer.export_onnx(hf, exported_with, str(tmp_path / 'bad' / 'model.onnx'))
    # another shape than the exported one: batch and length are dynamic in the file
    inputs = make_inputs(len(vocab), 2, 16, seed=0)
    ours = gluonbert_peer.mx_runner(net, gluonbert_peer.mx_inputs(inputs))
    runners = {OURS: ours, ORT_FP32: onnx_peers.ort_runner(onnx_peers.ort_session(good, 1),
                                                           inputs)}
    assert agreement(runners)[ORT_FP32]['max_abs_diff'] < 1e-5
    runners[ORT_FP32] = onnx_peers.ort_runner(onnx_peers.ort_session(bad, 1), inputs)
    with pytest.raises(AgreementError, match='ONNX Runtime fp32 disagrees'):
        agreement(runners)
    if importlib.util.find_spec('openvino'):
        runners = {OURS: ours, OV_FP32: onnx_peers.openvino_runner(bad, inputs, 'f32', 1)}
        with pytest.raises(AgreementError, match='OpenVINO fp32 disagrees'):
            agreement(runners)


def test_a_peer_is_skipped_with_its_reason():
    peer = peers.OptionalPeer('X int8', ('no_such_runtime_pkg',), 'int8', build=None)
    assert peers.skip_reason(peer, set()) == \
        "no_such_runtime_pkg not installed (pip install -e '.[bench]')"
    bf16 = peers.OptionalPeer('X bf16', (), 'bf16', build=None)
    assert 'no native bf16' in peers.skip_reason(bf16, {'avx2', 'avx512f', 'avx512_vnni'})
    assert peers.skip_reason(bf16, {'avx512f', 'avx512_bf16'}) is None
    assert peers.skip_reason(peers.OptionalPeer('X fp32', (), 'fp32', build=None), set()) is None
    limited = peers.OptionalPeer('X fp32', (), 'fp32', build=None, check=lambda: 'no device')
    assert peers.skip_reason(limited, set()) == 'no device'


def test_int8_check_needs_pooled_outputs_pointing_the_same_way():
    rng = np.random.RandomState(0)
    expected = [rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 8))]
    noisy = [expected[0] + 0.5, expected[1] + rng.normal(0, 1e-3, size=(2, 8))]
    assert check_agreement('int8', expected, noisy, atol=None, min_cosine=0.99)['passed']
    with pytest.raises(AgreementError, match='pooled output min cosine -1.0'):
        check_agreement('int8', expected, [expected[0], -expected[1]], atol=None,
                        min_cosine=0.99)


def test_a_disagreeing_low_precision_variant_is_refused_but_fp32_ones_stop_the_run():
    expected = [np.ones((1, 2, 4)), np.array([[1.0, 2.0, 3.0, 4.0]])]
    flipped = [expected[0], -expected[1]]
    runners = {OURS: lambda fetch=False: expected, INT8: lambda fetch=False: flipped,
               OV_BF16: lambda fetch=False: flipped, HF: lambda fetch=False: expected}
    checks = agreement(runners)
    for name in (INT8, OV_BF16):
        assert not checks[name]['passed'] and 'cosine' in checks[name]['refused']
    assert checks[HF]['passed'] and set(runners) == {OURS, HF}
    runners[ORT_FP32] = lambda fetch=False: [expected[0] + 0.01, expected[1]]
    with pytest.raises(AgreementError, match='ONNX Runtime fp32 disagrees'):
        agreement(runners)
    runners[ORT_FP32] = lambda fetch=False: expected
    runners[NLP] = lambda fetch=False: [expected[0] + 0.01, expected[1]]
    with pytest.raises(AgreementError, match='GluonNLP disagrees'):
        agreement(runners)


def test_flops_of_bert_base_at_128_tokens():
    config = dict(units=768, hidden_size=3072, num_layers=12)
    assert flops(config, 128) == pytest.approx(22.35e9, rel=1e-3)


def test_shapes_parse_and_bad_ones_name_the_format():
    assert cli.parse_args(['--shapes', '1x128,8x384', '2X16']).shapes == [(1, 128), (8, 384),
                                                                          (2, 16)]
    with pytest.raises(SystemExit):
        cli.parse_args(['--repeats', '0'])


def probe_peak(cmd, env):
    """The peak_rss_mb a memory probe prints."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    words = done.stdout.split()
    return float(words[words.index('peak_rss_mb') + 1]), done.stderr


def test_memory_probe_reports_its_own_peak_not_the_parent_one():
    net, _, _ = gluonbert_peer.build_gluonbert(MODEL, weights=False)
    cmd, env = memory.probe_command('gluonbert', 'infer', MODEL,
                                    dict(hparams=net.config.to_dict(), hf=None))
    assert cmd[1:3] == ['-m', 'gluonbert.benchmark']
    peak, _ = probe_peak(cmd, dict(env, OMP_NUM_THREADS='1'))
    # this test process has MXNet, torch, transformers and GluonNLP loaded; the probe only MXNet
    assert 50 < peak < memory.peak_rss_mb()


def test_the_script_still_runs_and_restarts_when_the_thread_count_changes():
    """scripts/benchmark.py is the same command line; MXNet has read OMP_NUM_THREADS by the time
    the package loads, so asking for another count restarts the process with it."""
    net, _, _ = gluonbert_peer.build_gluonbert(MODEL, weights=False)
    config = json.dumps(dict(hparams=net.config.to_dict(), hf=None))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    peak, stderr = probe_peak([sys.executable, SCRIPT, '--threads', '2', '--memory-probe',
                               'gluonbert', 'infer', MODEL, '--probe-config', config], env)
    assert peak > 50 and 'restarting with OMP_NUM_THREADS=2' in stderr
    _, stderr = probe_peak([sys.executable, SCRIPT, '--memory-probe', 'gluonbert', 'infer',
                            MODEL, '--probe-config', config], env)
    assert 'restarting' not in stderr


@pytest.mark.parametrize('argv, message', [
    (['--shapes', '8by128'], "--shapes: a shape is BATCHxSEQ_LEN with both >= 1, e.g. 8x128; "
                             "got '8by128'"),
    (['--shapes', '0x128'], "got '0x128'"),
    (['--models', 'bert_12_768'], "--models: unknown ['bert_12_768']; registered:"),
    (['--threads', '0'], 'argument --threads: must be a whole number >= 1; got 0'),
    (['--repeats', '0'], 'argument --repeats: must be a whole number >= 1; got 0'),
    (['--warmup', '-1'], 'argument --warmup: must be a whole number >= 0; got -1'),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err


def test_a_run_that_may_not_fit_in_memory_is_announced():
    from gluonbert import get_model
    from gluonbert.registry import list_models
    from gluonbert.summary import count_parameters
    registered = list_models()
    for name in ('bert_2_128_2', 'bert_6_384_12', 'bert_12_768_12'):
        net, _ = get_model(name, pretrained=False, **gluonbert_peer.HEADS)
        assert memory.bert_parameter_count(registered[name]) == count_parameters(net), name
    assert memory.bert_parameter_count(registered['bert_12_768_12']) == 109_482_240
    both = {name: registered[name] for name in ('bert_12_768_12', 'bert_6_384_12')}
    warning = memory.memory_warning(both, 16.0)  # the larger model decides: ~22 GB
    assert warning.startswith("bert_12_768_12's run may peak near 22 GB of memory") and \
        '16.0 GB are available' in warning and '--shapes' in warning
    assert memory.memory_warning(both, 64.0) is None
    assert memory.memory_warning(both, None) is None  # not Linux: nothing to compare with
    assert memory.available_memory_gb() > 0
