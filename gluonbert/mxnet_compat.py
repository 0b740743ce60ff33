"""Keeps MXNet 1.9.1 quiet next to the libraries it predates.

MXNet 1.9.1 checks `isinstance(x, scipy.sparse.csr.csr_matrix)` in every `mx.nd.array` call
when scipy is installed (gluonbert needs scipy for int8 entropy calibration). scipy >= 1.8
deprecates the `scipy.sparse.csr` namespace and warns on each such call. `quiet_scipy_sparse`
points MXNet at the same classes through a namespace that does not warn.
"""
import types

import mxnet.ndarray.sparse
import mxnet.ndarray.utils


def quiet_scipy_sparse() -> None:
    """Give MXNet's array constructors scipy.sparse's classes without the deprecated path."""
    for module in (mxnet.ndarray.utils, mxnet.ndarray.sparse):
        spsp = getattr(module, 'spsp', None)
        if spsp is None or isinstance(spsp, types.SimpleNamespace):
            continue  # no scipy, or already done
        module.spsp = types.SimpleNamespace(
            csr=types.SimpleNamespace(csr_matrix=spsp.csr_matrix),
            csr_matrix=spsp.csr_matrix, coo_matrix=spsp.coo_matrix)


quiet_scipy_sparse()  # on import: gluonbert/__init__ imports this module first
