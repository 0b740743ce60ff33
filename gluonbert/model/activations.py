"""Activation blocks used by BERT's feed-forward layers and MLM head."""
import math

from mxnet.gluon import HybridBlock, nn
from .types import NDArrayOrSymbol

ACTIVATIONS = ('gelu', 'gelu_tanh', 'relu')


class GELU(HybridBlock):
    """Gaussian Error Linear Unit: exact erf form, or Hendrycks' tanh approximation."""

    def __init__(self, approximate: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._approximate = approximate

    def hybrid_forward(self, F, x: NDArrayOrSymbol) -> NDArrayOrSymbol:
        """(...) -> (...), elementwise."""
        if not self._approximate:
            return F.LeakyReLU(x, act_type='gelu')  # MXNet's 'gelu' is the exact erf form
        return 0.5 * x * (1 + F.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * (x ** 3))))

    def __repr__(self) -> str:
        return f'GELU(approximate={self._approximate})'


def make_activation(name: str) -> HybridBlock:
    """Return the activation block for a name in ACTIVATIONS."""
    if name == 'gelu':
        return GELU()
    if name == 'gelu_tanh':
        return GELU(approximate=True)
    if name == 'relu':
        return nn.Activation('relu')
    raise ValueError('unknown activation {!r}; choose one of '
                     '{}'.format(name, ', '.join(ACTIVATIONS)))
