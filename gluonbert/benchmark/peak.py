"""This machine's peaks, the yardsticks of achieved GFLOP/s: the arithmetic peak of its FMA units
per precision (a compiled probe, `fma_peak.c`) and the fp32 GEMM rate MXNet reaches."""
import os
import shutil
import subprocess
import tempfile

import mxnet as mx

from .. import kernels
from .timing import median_seconds

PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fma_peak.c')
PRECISIONS = ('fp32', 'bf16', 'int8')
PROBE_TIMEOUT_S = 120


def c_compiler() -> str:
    """The compiler for the probe: $CC, else gcc or cc on the PATH, else the C++ compiler the
    kernels use (the source is compiled as C either way)."""
    return os.environ.get('CC') or shutil.which('gcc') or shutil.which('cc') or \
        kernels.compiler()


def fma_peak(threads: int, seconds: float = 0.2) -> tuple[dict, str | None]:
    """GFLOP/s the CPU's multiply-add vector units reach on `threads` threads with no memory
    traffic (each timed run lasts at least `seconds`) -> ({'fp32': G, 'bf16': G or None,
    'int8': G or None}, None), None for a precision without native instructions (bf16:
    AVX512_BF16, int8: AVX512_VNNI or AVX-VNNI); or ({}, why) when the probe could not be
    compiled or run. AMX tiles are not measured."""
    try:
        compiler = c_compiler()
    except kernels.KernelBuildError as err:
        return {}, str(err)
    with tempfile.TemporaryDirectory(prefix='gluonbert-peak-') as folder:
        binary = os.path.join(folder, 'fma_peak')
        try:
            built = subprocess.run([compiler, '-x', 'c', '-O2', '-fopenmp', PROBE_SOURCE, '-o',
                                    binary], capture_output=True, text=True, check=False,
                                   timeout=PROBE_TIMEOUT_S)
            if built.returncode != 0:
                return {}, f'compiling {PROBE_SOURCE} failed: {built.stderr.strip()[-300:]}'
            ran = subprocess.run([binary, str(seconds)], capture_output=True, text=True,
                                 check=False, timeout=PROBE_TIMEOUT_S,
                                 env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
        except subprocess.TimeoutExpired as err:
            return {}, f'the peak probe took longer than {err.timeout:g} s'
        except OSError as err:  # the compiler ($CC or $CXX) does not exist or cannot run
            return {}, f'could not run {compiler}: {err}'
    return parse_probe_output(ran.stdout) if ran.returncode == 0 else (
        {}, f'the peak probe failed (exit {ran.returncode}): {ran.stderr.strip()[-300:]}')


def parse_probe_output(text: str) -> tuple[dict, str | None]:
    """'fp32 234.4 bf16 none int8 937.5' -> ({'fp32': 234.4, 'bf16': None, 'int8': 937.5},
    None), or ({}, why) for anything else."""
    words = text.split()
    pairs = dict(zip(words[::2], words[1::2]))
    if len(words) != 2 * len(PRECISIONS) or set(pairs) != set(PRECISIONS):
        return {}, f'unexpected peak probe output: {text.strip()!r}'
    try:
        return {p: None if pairs[p] == 'none' else float(pairs[p]) for p in PRECISIONS}, None
    except ValueError:
        return {}, f'unexpected peak probe output: {text.strip()!r}'


def gemm_peak(n: int = 2048, repeats: int = 7) -> float:
    """This machine's fp32 GEMM GFLOP/s: median of `repeats` n x n mx.nd.dot after a warmup."""
    a, b = mx.nd.random.normal(shape=(n, n)), mx.nd.random.normal(shape=(n, n))
    return 2 * n ** 3 / median_seconds(lambda: mx.nd.dot(a, b).wait_to_read(), repeats) / 1e9
