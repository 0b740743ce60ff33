"""One post-LayerNorm transformer layer, as in BERT."""
import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from .activations import make_activation
from .attention import MultiHeadSelfAttention
from .layer_norm import LayerNorm
from .types import NDArrayOrSymbol


class TransformerLayer(HybridBlock):
    """x -> LN(x + Attn(x)) -> LN(h + FFN(h)); shapes (seq_len, batch, units) in and out.

    output_attention=True also returns the layer's attention weights
    (batch, num_heads, seq_len, seq_len).
    """

    def __init__(self, units: int, hidden_size: int, num_heads: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, layer_norm_eps: float = 1e-12,
                 activation: str = 'gelu',
                 weight_initializer: mx.init.Initializer | str | None = None,
                 output_attention: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._output_attention = output_attention
        with self.name_scope():
            self.attention = MultiHeadSelfAttention(units, num_heads, attention_dropout,
                                                    weight_initializer, output_attention,
                                                    prefix='attention_')
            self.attention_norm = LayerNorm(epsilon=layer_norm_eps, in_channels=units,
                                            prefix='attention_norm_')
            self.ffn_1 = nn.Dense(hidden_size, in_units=units, flatten=False,
                                  weight_initializer=weight_initializer, prefix='ffn_1_')
            self.activation = make_activation(activation)
            self.ffn_2 = nn.Dense(units, in_units=hidden_size, flatten=False,
                                  weight_initializer=weight_initializer, prefix='ffn_2_')
            self.ffn_norm = LayerNorm(epsilon=layer_norm_eps, in_channels=units,
                                      prefix='ffn_norm_')
            self.dropout = nn.Dropout(dropout) if dropout else None

    def _drop(self, x):
        return x if self.dropout is None else self.dropout(x)

    def hybrid_forward(self, F, x: NDArrayOrSymbol, attention_bias: NDArrayOrSymbol | None = None
                       ) -> NDArrayOrSymbol | tuple[NDArrayOrSymbol, NDArrayOrSymbol]:
        """x (seq_len, batch, units), attention_bias (batch*heads, seq_len, seq_len) or None
        -> same shape as x [, attention weights (batch, num_heads, seq_len, seq_len)]."""
        attended = self.attention(x, attention_bias)
        if self._output_attention:
            attended, weights = attended
        x = self.attention_norm(x + self._drop(attended))
        x = self.ffn_norm(x + self._drop(self.ffn_2(self.activation(self.ffn_1(x)))))
        return (x, weights) if self._output_attention else x
