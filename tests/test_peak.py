"""The benchmark's yardsticks: the compiled multiply-add probe reports what this CPU has, never
less than MXNet's own GEMM reaches, and says why when it cannot run; the Dense kernel probe."""
import os
import sys

import pytest

from conftest import REPO
from gluonbert.benchmark import peak
from gluonbert.hardware import cpu_flags
from gluonbert.kernels import KernelBuildError
from gluonbert.precision import bfloat16_supported

try:
    peak.c_compiler()
    HAS_COMPILER = True
except KernelBuildError:
    HAS_COMPILER = False


@pytest.mark.skipif(not HAS_COMPILER, reason='no C compiler to build the probe')
def test_probe_reports_each_precision_the_cpu_has_and_bounds_the_gemm():
    threads = int(os.environ.get('OMP_NUM_THREADS', '1'))  # what MXNet read at import
    rates, why = peak.fma_peak(threads, seconds=0.05)
    assert why is None, why
    flags = cpu_flags()[1]
    assert rates['fp32'] > 0
    assert (rates['bf16'] is not None) == ({'avx512_bf16', 'avx512f'} <= flags)
    assert (rates['int8'] is not None) == ({'avx512_vnni', 'avx512f'} <= flags or
                                           'avx_vnni' in flags)
    # one bf16 / int8 instruction does 2x / 4x the multiply-adds of an fp32 FMA of its width
    # (at most half as many issue per cycle on some cores)
    for precision in ('bf16', 'int8'):
        if rates[precision]:
            assert rates[precision] > 0.9 * rates['fp32']
    # a real GEMM on the same threads cannot beat the units it runs on
    if 'OMP_NUM_THREADS' in os.environ:
        assert peak.gemm_peak(n=1024, repeats=3) <= 1.2 * rates['fp32']  # 1.2: timing noise


def test_a_missing_compiler_is_one_reason_not_a_crash(monkeypatch):
    monkeypatch.setenv('CC', '/nonexistent/cc')
    rates, why = peak.fma_peak(threads=1, seconds=0.001)
    assert rates == {} and why.startswith('could not run /nonexistent/cc')


def test_probe_output_is_parsed_or_refused():
    assert peak.parse_probe_output('fp32 234.4 bf16 none int8 937.5\n') == (
        {'fp32': 234.4, 'bf16': None, 'int8': 937.5}, None)
    for text in ('', 'fp32 1.0', 'fp32 x bf16 none int8 1', 'fp32 1 bf16 2 int8 3 fp16 4'):
        rates, why = peak.parse_probe_output(text)
        assert rates == {} and 'unexpected peak probe output' in why


def test_each_variant_is_measured_against_its_own_precision():
    from gluonbert.benchmark import variants as v
    assert {name: v.precision_of(name) for name in (
        v.OURS, v.INT8, v.LEVER, v.HF, v.NLP, v.BF16, v.BF16_TRAIN, v.HF_BF16, v.ORT_FP32,
        v.ORT_INT8, v.OV_FP32, v.OV_BF16)} == {
        v.OURS: 'fp32', v.INT8: 'int8', v.LEVER: 'fp32', v.HF: 'fp32', v.NLP: 'fp32',
        v.BF16: 'bf16', v.BF16_TRAIN: 'bf16', v.HF_BF16: 'bf16', v.ORT_FP32: 'fp32',
        v.ORT_INT8: 'int8', v.OV_FP32: 'fp32', v.OV_BF16: 'bf16'}


def test_dense_kernel_probe_times_every_route_of_every_layer(capsys):
    """scripts/dense_kernels.py (the numbers behind docs/performance.md's kernel table)."""
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    import dense_kernels
    rows = dense_kernels.main(['--model', 'bert_2_128_2', '--tokens', '8', '--repeats', '1'])
    dtypes = {'float32', 'bfloat16'} if bfloat16_supported() else {'float32'}
    routes = {(r['layer'], r['dtype'], r['route']) for r in rows}
    expected = {(layer, dtype, route) for layer in ('qkv', 'out_proj', 'ffn_1', 'ffn_2')
                for dtype in dtypes for route in dense_kernels.ROUTES
                if not (route == 'dot' and dtype == 'bfloat16')}
    assert routes == expected
    assert all(r['gflops'] > 0 for r in rows)
    shapes = {r['layer']: (r['in_units'], r['units']) for r in rows}
    assert shapes == {'qkv': (128, 384), 'out_proj': (128, 128), 'ffn_1': (128, 512),
                      'ffn_2': (512, 128)}
    assert '| ffn_2 512->128 | 8 | float32 |' in capsys.readouterr().out


def test_report_names_its_yardstick_and_falls_back_to_the_gemm_rate():
    from gluonbert.benchmark.report import peak_lines, rate_cell
    lines = peak_lines({'gemm_fp32': 200.0, 'fma': {}, 'fma_note': 'no C++ compiler found'})
    assert lines == ['- multiply-add peak: not measured (no C++ compiler found); percentages '
                     'are of the fp32 GEMM rate',
                     '- fp32 GEMM: 200.0 GFLOP/s (median 2048x2048 mx.nd.dot)']
    assert rate_cell(dict(gflops=100.0, pct_gemm_peak=50.0, pct_fma_peak=None)) == \
        '100.0 (50% GEMM)'
    assert rate_cell(dict(gflops=100.0, pct_gemm_peak=50.0, pct_fma_peak=42.7)) == '100.0 (43%)'
    measured = {'gemm_fp32': 200.0, 'fma': {'fp32': 230.0, 'bf16': None, 'int8': 900.0},
                'fma_note': None}
    line = peak_lines(measured)[0]
    assert 'fp32 230.0, bf16 none (no native instruction), int8 900.0' in line
    assert 'AMX' not in line and 'AMX tiles, not measured' in peak_lines(measured, amx=True)[0]
