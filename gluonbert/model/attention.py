"""Multi-head self-attention on MXNet's fused interleaved kernels.

The query, key and value projections live in one Dense layer `qkv` whose output rows are
interleaved per head, the layout `contrib.interleaved_matmul_selfatt_*` expect:
for head h the rows are [q_h; k_h; v_h], each `units // num_heads` long. `interleave_qkv` and
`split_qkv` convert between that layout and the separate q/k/v tensors of every checkpoint format.
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock, nn
from .types import NDArrayOrSymbol


def interleave_qkv(query: np.ndarray, key: np.ndarray, value: np.ndarray,
                   num_heads: int) -> np.ndarray:
    """Separate q/k/v weights (units, in) or biases (units,) -> fused rows (3*units, ...)."""
    units = query.shape[0]
    parts = [np.asarray(t).reshape((num_heads, units // num_heads) + t.shape[1:])
             for t in (query, key, value)]
    return np.stack(parts, axis=1).reshape((3 * units,) + query.shape[1:])


def split_qkv(qkv: np.ndarray, num_heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fused rows (3*units, ...) -> (query, key, value), each (units, ...); inverse of "
      "interleave."""
    qkv = np.asarray(qkv)
    units = qkv.shape[0] // 3
    heads = qkv.reshape((num_heads, 3, units // num_heads) + qkv.shape[1:])
    return tuple(heads[:, i].reshape((units,) + qkv.shape[1:]) for i in range(3))


class MultiHeadSelfAttention(HybridBlock):
    """Scaled dot-product self-attention over (seq_len, batch, units), time-major for the fused ops.

    output_attention=True also returns the attention weights (batch, num_heads, seq_len,
    seq_len), after dropout as GluonNLP and HuggingFace return them.
    """

    def __init__(self, units: int, num_heads: int, dropout: float = 0.0,
                 weight_initializer: mx.init.Initializer | str | None = None,
                 output_attention: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._num_heads = num_heads
        self._output_attention = output_attention
        with self.name_scope():
            self.qkv = nn.Dense(3 * units, in_units=units, flatten=False,
                                weight_initializer=weight_initializer, prefix='qkv_')
            self.dropout = nn.Dropout(dropout) if dropout else None
            self.out_proj = nn.Dense(units, in_units=units, flatten=False,
                                     weight_initializer=weight_initializer, prefix='out_proj_')

    def hybrid_forward(self, F, x: NDArrayOrSymbol, attention_bias: NDArrayOrSymbol | None = None
                       ) -> NDArrayOrSymbol | tuple[NDArrayOrSymbol, NDArrayOrSymbol]:
        """x (seq_len, batch, units), attention_bias (batch*heads, seq_len, seq_len) or None
        -> (seq_len, batch, units) [, weights (batch, num_heads, seq_len, seq_len)]. The bias is
        added to the scores of each (query, key): 0 keeps a key, -1e4 gives it zero weight."""
        qkv = self.qkv(x)
        scores = F.contrib.interleaved_matmul_selfatt_qk(qkv, heads=self._num_heads)
        if attention_bias is not None:
            scores = F.elemwise_add(scores, attention_bias)
        weights = F.softmax(scores, axis=-1)
        if self.dropout is not None:
            weights = self.dropout(weights)
        context = F.contrib.interleaved_matmul_selfatt_valatt(qkv, weights, heads=self._num_heads)
        if not self._output_attention:
            return self.out_proj(context)
        # (batch * heads, seq_len, seq_len), batch-major rows -> (batch, heads, seq_len, seq_len)
        return self.out_proj(context), F.reshape(weights, (-4, -1, self._num_heads, -2))
