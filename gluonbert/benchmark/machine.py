"""The machine a benchmark runs on: thread settings, CPU and its SIMD flags, library versions."""
import importlib
import os
import platform
import sys

import mxnet
import numpy as np

from .. import __version__, kernels
from ..precision import cpu_flags

THREADS_NOTE = 'GLUONBERT_BENCH_THREADS_NOTE'  # carries the note across the restart
# MXNet (imported with gluonbert, before this module) read OMP_NUM_THREADS when it loaded
THREADS_AT_STARTUP = os.environ.get('OMP_NUM_THREADS')


def configure_threads(threads: int | None = None) -> tuple[int, str]:
    """Set OMP_NUM_THREADS before MXNet and torch load -> (thread count, how it was chosen)."""
    if threads:
        os.environ['OMP_NUM_THREADS'] = str(threads)
        how = 'set by --threads'
    elif os.environ.get(THREADS_NOTE):
        how = os.environ[THREADS_NOTE]
    elif os.environ.get('OMP_NUM_THREADS'):
        how = 'from the environment'
    else:
        os.environ['OMP_NUM_THREADS'] = str(os.cpu_count())
        how = ('was unset: set to the number of cores, as MXNet runs single-threaded without '
               'it')
    return int(os.environ['OMP_NUM_THREADS']), how


def native_precisions(flags: set[str]) -> dict[str, bool]:
    """Which low precisions this CPU runs with native instructions: int8 dot products (VNNI)
    and bf16 arithmetic (AVX512_BF16 or AMX-BF16)."""
    return {'vnni': bool({'avx512_vnni', 'avx_vnni'} & flags),
            'bf16': bool({'avx512_bf16', 'amx_bf16'} & flags)}


def machine_info(threads: int, how: str) -> dict:
    """CPU model, cores, SIMD flags, thread settings of every runtime and load of this machine."""
    cpu, flags = cpu_flags()
    simd = {'avx2': 'avx2' in flags, 'avx512': 'avx512f' in flags,
            **native_precisions(flags), 'amx': 'amx_tile' in flags}
    return dict(cpu=cpu if cpu != 'unknown CPU' else platform.processor(), cores=os.cpu_count(),
                omp_num_threads=threads, threads_note=how, simd=simd, cpu_flags=sorted(flags),
                threads={'OMP_NUM_THREADS': threads, 'torch': threads,
                         'ONNX Runtime intra_op_num_threads': threads,
                         'OpenVINO INFERENCE_NUM_THREADS': threads},
                load_average=os.getloadavg())


OPTIONAL_LIBRARIES = ('onnx', 'onnxruntime', 'openvino')


def versions() -> dict[str, str]:
    """Versions of the frameworks compared (the optional runtimes when installed)."""
    import gluonnlp
    import torch
    import transformers
    out = dict(python=platform.python_version(), gluonbert=__version__,
               gluonbert_kernels='loaded' if kernels.load() else 'off (MXNet LayerNorm)',
               mxnet=mxnet.__version__, torch=torch.__version__,
               transformers=transformers.__version__, gluonnlp=gluonnlp.__version__,
               numpy=np.__version__)
    for name in OPTIONAL_LIBRARIES:
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = 'not installed'
    return out


def mxnet_loaded() -> bool:
    """True once MXNet is imported (it has read OMP_NUM_THREADS by then)."""
    return 'mxnet' in sys.modules


def restart_needed() -> bool:
    """True when OMP_NUM_THREADS now differs from the value MXNet read at startup."""
    return mxnet_loaded() and os.environ.get('OMP_NUM_THREADS') != THREADS_AT_STARTUP
