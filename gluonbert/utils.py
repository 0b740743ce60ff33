"""GluonNLP 0.10's `nlp.utils` helpers that BERT training code calls."""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from types import ModuleType

import mxnet as mx

from . import __version__
from .train.clipping import global_norm


def check_version(min_version: str, warning_only: bool = False,
                  library: ModuleType | None = None) -> None:
    """Raise (or warn) when the library's version is older than `min_version`.

    Code written for GluonNLP calls `nlp.utils.check_version('0.8.1')`: gluonbert provides the
    GluonNLP 0.10 API, so GluonNLP versions up to 0.10 are satisfied."""
    if library is not None:
        version = library.__version__
    else:
        version = '0.10.0' if _parse(min_version) <= _parse('0.10.0') else __version__
    if _parse(version) < _parse(min_version):
        message = f'installed version {version} is older than the required {min_version}'
        if not warning_only:
            raise AssertionError(message)
        warnings.warn(message, stacklevel=2)


def _parse(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split('.')[:3] if part.isdigit())


def clip_grad_global_norm(parameters: Iterable[mx.gluon.Parameter], max_norm: float,
                          check_isfinite: bool = True) -> float | mx.nd.NDArray:
    """Rescale the gradients of `parameters` so their joint L2 norm is at most `max_norm`;
    returns the norm before clipping (a float, or an NDArray (1,) with check_isfinite=False,
    which skips the host sync). A non-finite norm warns and leaves the gradients as they are,
    as GluonNLP does."""
    trainable = [p for p in parameters if p.grad_req != 'null']
    if not trainable:
        raise ValueError('clip_grad_global_norm got no parameters with gradients (all grad_req '
                         "'null'); pass the trainable parameters")
    # after allreduce every device holds the same gradient: the norm is taken on the first
    first = [p.list_grad()[0] for p in trainable]
    ctx = first[0].context
    norm = global_norm([g if g.context == ctx else g.as_in_context(ctx) for g in first])
    if check_isfinite:
        value = float(norm.asscalar())
        if not mx.nd.contrib.isfinite(norm).asscalar():
            warnings.warn(UserWarning('nan or inf is detected. Clipping results will be '
                                      'undefined.'), stacklevel=2)
            return value
    scale = mx.nd.minimum(mx.nd.ones_like(norm), max_norm / (norm + 1e-8))
    for param in trainable:
        for grad in param.list_grad():
            grad *= scale.as_in_context(grad.context)
    return value if check_isfinite else norm
