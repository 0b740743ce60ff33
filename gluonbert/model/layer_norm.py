"""LayerNorm over the last axis, on gluonbert's fast CPU kernel when it is available."""
import numpy as np
from mxnet.gluon import HybridBlock

from .. import kernels
from ..files import staged_files
from .types import NDArrayOrSymbol


class PortableExport:
    """HybridBlock mixin: `export` writes MXNet's LayerNorm where the graph runs gluonbert's
    kernel, so the exported symbol loads in any MXNet 1.9 (as `gluonbert.export_model` does)."""

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True) -> None:
        """`HybridBlock.export`, then the portable rewrite of `path-symbol.json` (both files move
        into place together once complete)."""
        with staged_files(path, (f'-{epoch:04d}.params', '-symbol.json')) as staged:
            super().export(staged, epoch, remove_amp_cast)
            kernels.make_portable_file(f'{staged}-symbol.json')


class LayerNorm(PortableExport, HybridBlock):
    """(..., units) -> (..., units), normalized over `units`; parameters `gamma`, `beta`
    named as in `mxnet.gluon.nn.LayerNorm`, so checkpoints are interchangeable.

    float32 on CPU contexts runs `gluonbert.kernels` (forward + backward ~10-20x faster than
    MXNet 1.9's, the same values to ~1e-6); anything else runs MXNet's LayerNorm."""

    def __init__(self, epsilon: float = 1e-12, in_channels: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if in_channels <= 0:
            raise ValueError('LayerNorm needs in_channels (the size of the last axis); got '
                             f'{in_channels}')
        self._epsilon = epsilon
        self._in_channels = in_channels
        with self.name_scope():
            self.gamma = self.params.get('gamma', shape=(in_channels,), init='ones',
                                         allow_deferred_init=True)
            self.beta = self.params.get('beta', shape=(in_channels,), init='zeros',
                                        allow_deferred_init=True)

    def uses_kernel(self) -> bool:
        """True when this block runs gluonbert's kernel (float32 parameters on CPUs only)."""
        try:
            contexts = self.gamma.list_ctx()
        except RuntimeError:  # not initialized yet: decided again at the next trace
            return False
        return (np.dtype(self.gamma.dtype) == np.float32
                and all(ctx.device_type == 'cpu' for ctx in contexts) and kernels.load())

    def hybrid_forward(self, F, x: NDArrayOrSymbol, gamma: NDArrayOrSymbol,
                       beta: NDArrayOrSymbol) -> NDArrayOrSymbol:
        """x (..., units) -> same shape."""
        if self.uses_kernel():
            # The identities hand gradient accumulation (grad_req='add') to MXNet: the kernel
            # always writes its gradients, into fresh buffers the copies then add or write.
            return F._internal._gluonbert_layer_norm(
                F.identity(x), F.identity(gamma), F.identity(beta), eps=self._epsilon)
        return F.LayerNorm(x, gamma, beta, axis=-1, eps=self._epsilon)

    def __repr__(self) -> str:
        return f'LayerNorm({self._in_channels}, eps={self._epsilon})'
