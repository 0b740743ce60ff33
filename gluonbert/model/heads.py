"""BERT's pretraining heads: Pooler, NSClassifier (next sentence) and MLMDecoder (masked LM)."""
import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from .activations import make_activation
from .layer_norm import LayerNorm
from .types import NDArrayOrSymbol


class Pooler(HybridBlock):
    """Dense + tanh on the first ([CLS]) token: (batch, seq_len, units) -> (batch, units)."""

    def __init__(self, units: int, weight_initializer: mx.init.Initializer | str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = nn.Dense(units, in_units=units, activation='tanh', flatten=False,
                                  weight_initializer=weight_initializer, prefix='dense_')

    def hybrid_forward(self, F, sequence: NDArrayOrSymbol) -> NDArrayOrSymbol:
        """(batch, seq_len, units) -> (batch, units)."""
        first = F.reshape(F.slice_axis(sequence, axis=1, begin=0, end=1), (0, -1))
        return self.dense(first)


class NSClassifier(HybridBlock):
    """Next-sentence prediction: pooled (batch, units) -> logits (batch, 2)."""

    def __init__(self, units: int, weight_initializer: mx.init.Initializer | str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = nn.Dense(2, in_units=units, weight_initializer=weight_initializer,
                                  prefix='dense_')

    def hybrid_forward(self, F, pooled: NDArrayOrSymbol) -> NDArrayOrSymbol:
        """(batch, units) -> (batch, 2)."""
        return self.dense(pooled)


class MLMDecoder(HybridBlock):
    """Masked-LM head: Dense -> activation -> LayerNorm -> Dense tied to the word embedding.

    The output projection's weight *is* `embed_weight` (the same Parameter, not a copy), so it is
    stored once in checkpoints, under the embedding's name.
    """

    def __init__(self, units: int, vocab_size: int, embed_weight: mx.gluon.Parameter,
                 activation: str = 'gelu', layer_norm_eps: float = 1e-12,
                 weight_initializer: mx.init.Initializer | str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._vocab_size = vocab_size
        with self.name_scope():
            self.transform = nn.Dense(units, in_units=units, flatten=False,
                                      weight_initializer=weight_initializer, prefix='transform_')
            self.activation = make_activation(activation)
            self.layer_norm = LayerNorm(epsilon=layer_norm_eps, in_channels=units,
                                        prefix='layer_norm_')
            self.bias = self.params.get('bias', shape=(vocab_size,), init='zeros')
        self.embed_weight = embed_weight

    def _collect_params_with_prefix(self, prefix=''):
        # The tied weight belongs to the embedding; do not save or expect it twice.
        params = super()._collect_params_with_prefix(prefix)
        params.pop((prefix + '.' if prefix else '') + 'embed_weight')
        return params

    def hybrid_forward(self, F, sequence: NDArrayOrSymbol, masked_positions: NDArrayOrSymbol,
                       embed_weight: NDArrayOrSymbol | None = None,
                       bias: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
        """sequence (batch, seq_len, units), masked_positions (batch, num_masked)
        -> logits (batch, num_masked, vocab_size)."""
        rows = F.broadcast_like(
            F.reshape(F.contrib.arange_like(masked_positions, axis=0), (-1, 1)), masked_positions)
        picked = F.gather_nd(sequence, F.stack(rows, masked_positions, axis=0))
        hidden = self.layer_norm(self.activation(self.transform(picked)))
        return F.FullyConnected(hidden, embed_weight, bias, num_hidden=self._vocab_size,
                                flatten=False)
