"""gluonbert's own CPU operators: built from C++ source on first use, loaded into MXNet.

`layer_norm.cc` is an MXNet 1.9 extension library (`mx.library.load`, `include/mxnet/lib_api.h`
from the mxnet wheel). It is compiled once per machine, source and MXNet version into
$GLUONBERT_HOME/kernels (default ~/.gluonbert/kernels) with the system C++ compiler (~15 s).
Without a compiler, or with GLUONBERT_KERNELS=0, everything runs on MXNet's own operators:
same results, slower training. Exported symbols never contain these operators
(`make_portable`), so deployments need only MXNet.
"""
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

import mxnet as mx

from ..files import atomic_path, write_text
from ..hardware import cpu_flags

LOG = logging.getLogger(__name__)
ENABLE_ENV = 'GLUONBERT_KERNELS'
LAYER_NORM_OP = '_gluonbert_layer_norm'
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'layer_norm.cc')
_LOCK = threading.Lock()
_STATE = {}
# Seen with horovod 0.28.1 on mxnet 1.9.1: loading an extension library in a process that also
# has Horovod's MXNet library dies (SIGFPE or a corrupted free), whichever comes first.
HOROVOD_CLASH = ('MXNet 1.9.1 crashes when an extension library and Horovod are loaded in one '
                 'process')


class KernelBuildError(RuntimeError):
    """The C++ kernels could not be compiled or loaded."""


def _mxnet_files():
    root = os.path.dirname(os.path.abspath(mx.__file__))
    header = os.path.join(root, 'include', 'mxnet', 'lib_api.h')
    source = os.path.join(root, 'src', 'lib_api.cc')
    for path in (header, source):
        if not os.path.isfile(path):
            raise KernelBuildError(f'the mxnet package has no {path} to build extension operators '
                                   'against')
    return os.path.join(root, 'include'), source


def compiler() -> str:
    """The C++ compiler to build with: $CXX, else g++ or c++ on the PATH."""
    found = os.environ.get('CXX') or shutil.which('g++') or shutil.which('c++')
    if not found:
        raise KernelBuildError('no C++ compiler found (set CXX or install g++)')
    return found


def library_path(root: str | None = None) -> str:
    """Where the compiled library for this source, MXNet, compiler and CPU lives."""
    include, api_source = _mxnet_files()
    digest = hashlib.sha1()
    for path in (_SOURCE, os.path.join(include, 'mxnet', 'lib_api.h'), api_source):
        with open(path, 'rb') as handle:
            digest.update(handle.read())
    name, flags = cpu_flags()  # the library is built with -march=native
    digest.update(f'{mx.__version__}|{compiler()}|{name}|{sorted(flags)}'.encode())
    home = root or os.path.join(os.environ.get('GLUONBERT_HOME')
                                or os.path.join('~', '.gluonbert'), 'kernels')
    return os.path.abspath(os.path.join(os.path.expanduser(home), digest.hexdigest()[:16],
                                        'libgluonbert_kernels.so'))


def build(path: str) -> None:
    """Compile the kernels into `path` (written to a temporary name, then renamed)."""
    include, api_source = _mxnet_files()
    with atomic_path(path, suffix='.so') as temp:
        command = [compiler(), '-shared', '-fPIC', '-std=c++17', '-O3', '-march=native',
                   '-fopenmp', '-I' + os.path.join(include, 'mxnet'), '-I' + include,
                   _SOURCE, api_source, '-o', temp]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise KernelBuildError(f'compiling {_SOURCE} failed:\n{done.stderr[-2000:]}')


def load(root: str | None = None) -> bool:
    """Build if needed and load the kernels into this process; True when they are usable.

    Failures are reported once (a warning) and leave MXNet's own operators in use."""
    with _LOCK:
        if 'loaded' in _STATE:
            return _STATE['loaded']
        _STATE['loaded'] = False
        if os.environ.get(ENABLE_ENV, '1').strip().lower() in ('0', 'false', 'no', 'off'):
            return False
        if 'horovod.mxnet' in sys.modules:
            warnings.warn(f'gluonbert kernels not loaded: {HOROVOD_CLASH}', stacklevel=2)
            return False
        try:
            path = library_path(root)
            if not os.path.isfile(path):
                LOG.info('building gluonbert kernels into %s', path)
                build(path)
            try:
                mx.library.load(path, False)
            except (OSError, mx.base.MXNetError):  # a damaged cached file: build it again once
                os.remove(path)
                build(path)
                mx.library.load(path, False)
            _STATE['loaded'] = True
        except (KernelBuildError, OSError, mx.base.MXNetError) as err:
            warnings.warn('gluonbert kernels unavailable, using MXNet LayerNorm (slower '
                          f'training): {err}', stacklevel=2)
        return _STATE['loaded']


def disable(why: str) -> bool:
    """Keep the kernels out of this process from now on (MXNet's LayerNorm everywhere).
    Returns False when it is too late: they are already loaded."""
    with _LOCK:
        if _STATE.get('loaded'):
            return False
        if 'loaded' not in _STATE:
            LOG.info('gluonbert kernels disabled: %s', why)
        _STATE['loaded'] = False
        return True


def make_portable(symbol_json: str) -> str:
    """A symbol's JSON text with every gluonbert kernel replaced by the MXNet operator it
    stands for, so that the file loads in any MXNet 1.9 without this library."""
    graph = json.loads(symbol_json)
    for node in _nodes(graph):
        if node['op'] == LAYER_NORM_OP:
            attrs = node.get('attrs', {})
            node['op'] = 'LayerNorm'
            node['attrs'] = {'axis': '-1', 'eps': attrs.get('eps', '1e-05')}
    return json.dumps(graph, indent=2)


def _nodes(graph):
    """Every node of a symbol's JSON graph, including those nested in fused subgraphs."""
    for node in graph['nodes']:
        yield node
        for subgraph in node.get('subgraphs', []):  # optimize_for's fused nodes nest graphs
            yield from _nodes(subgraph)


def make_portable_file(symbol_file: str) -> None:
    """Rewrite an exported `-symbol.json` in place with `make_portable` (atomically)."""
    with open(symbol_file) as handle:
        text = handle.read()
    if LAYER_NORM_OP not in text:
        return
    write_text(symbol_file, make_portable(text))
