"""Global-norm gradient clipping as an NDArray factor: no host sync in the training step."""
from collections.abc import Sequence

from mxnet import nd

_CHUNK = 64  # multi_sum_sq takes a bounded number of arrays per call


def global_norm(arrays: Sequence[nd.NDArray]) -> nd.NDArray:
    """sqrt(sum of squares) over all `arrays` (same context) -> NDArray (1,)."""
    partial = [nd.sum(nd.multi_sum_sq(*arrays[i:i + _CHUNK], num_arrays=len(arrays[i:i + _CHUNK])))
               for i in range(0, len(arrays), _CHUNK)]
    return nd.sqrt(nd.add_n(*partial) if len(partial) > 1 else partial[0]).reshape((1,))


def clip_factor(norm: nd.NDArray, max_norm: float | None = None) -> nd.NDArray:
    """min(1, max_norm / norm), or NaN when `norm` is not finite (the optimizer then skips).

    With max_norm=None there is no clipping, only the non-finite guard (factor 1 or NaN).
    """
    finite = nd.contrib.isfinite(norm)
    factor = nd.ones_like(norm) if max_norm is None else \
        nd.minimum(nd.ones_like(norm), max_norm / (norm + 1e-6))
    return nd.where(finite, factor, nd.full(norm.shape, float('nan'), ctx=norm.context))
