"""BERTEncoder: word + segment + learned position embeddings and a stack of transformer layers."""
from collections.abc import Mapping
from typing import Any

import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from .config import BERTConfig
from .layer_norm import LayerNorm, PortableExport
from .transformer import TransformerLayer
from .types import BlockOutputs, NDArrayOrSymbol


class BERTEncoder(PortableExport, HybridBlock):
    """(input_ids, token_types, valid_length) (batch, seq_len) -> (batch, seq_len, units).

    Positions at or beyond `valid_length` are masked out of attention and zeroed in the output,
    so a padded batch gives each sequence the same valid-position outputs as running it alone.
    Internally the stack runs time-major, the layout of MXNet's fused self-attention kernels.

    GluonNLP 0.10's output options (both off by default, and then the graph has nothing extra):
    with output_attention or output_all_encodings the result is `(encodings, attentions)`:
    encodings is the last layer's (batch, seq_len, units), or with output_all_encodings the list
    of every layer's (first to last, each masked like the output); attentions is the list of
    every layer's attention weights (batch, num_heads, seq_len, seq_len), or [] without
    output_attention. use_token_type_embed=False builds no segment embedding (token_types are
    then ignored, as in GluonNLP).

    Hyperparameters: `BERTEncoder(BERTConfig(...))` or, as before, `BERTEncoder(vocab_size=...,
    units=..., ...)`; `encoder.config` is the BERTConfig (attention_dropout filled in).
    """

    def __init__(self, config: BERTConfig | None = None, *,
                 weight_initializer: mx.init.Initializer | str | None = None,
                 output_attention: bool = False, output_all_encodings: bool = False,
                 use_token_type_embed: bool = True, prefix: str | None = None,
                 params: mx.gluon.ParameterDict | None = None, **fields: Any) -> None:
        """config: a BERTConfig (default BERT-base's); keyword hyperparameters (vocab_size=...,
        units=..., as BERTConfig's fields) build one, or change the given one."""
        if config is None:
            config = BERTConfig.from_dict(fields)
        elif not isinstance(config, BERTConfig):
            raise TypeError(f'config must be a BERTConfig, got {type(config).__name__}; keyword '
                            f'hyperparameters (vocab_size=..., units=...) build one')
        elif fields:
            config = config.replace(**fields)
        super().__init__(prefix=prefix, params=params)
        self.config = config = config.resolved()
        vocab_size, units, max_length = config.vocab_size, config.units, config.max_length
        # Output options, not hyperparameters: they change what is returned, not the weights.
        self.output_attention = bool(output_attention)
        self.output_all_encodings = bool(output_all_encodings)
        self.use_token_type_embed = bool(use_token_type_embed)
        # BERT's initialisation: N(0, 0.02) for every weight matrix and embedding table.
        init = weight_initializer if weight_initializer is not None else mx.init.Normal(0.02)
        with self.name_scope():
            self.word_embed = nn.Embedding(vocab_size, units, weight_initializer=init,
                                           prefix='word_embed_')
            if self.use_token_type_embed:
                self.token_type_embed = nn.Embedding(config.token_type_vocab_size, units,
                                                     weight_initializer=init,
                                                     prefix='token_type_embed_')
            self.position_weight = self.params.get('position_weight', shape=(max_length, units),
                                                   init=init)
            self.embed_norm = LayerNorm(epsilon=config.layer_norm_eps, in_channels=units,
                                        prefix='embed_norm_')
            self.embed_dropout = nn.Dropout(config.dropout) if config.dropout else None
            self.layers = nn.HybridSequential(prefix='layers_')
            with self.layers.name_scope():
                for i in range(config.num_layers):
                    self.layers.add(TransformerLayer(
                        units, config.hidden_size, config.num_heads, config.dropout,
                        config.attention_dropout, config.layer_norm_eps, config.activation,
                        init, self.output_attention,
                        prefix=f'{i}_'))

    @property
    def units(self) -> int:
        """Width of the hidden states."""
        return self.config.units

    def __call__(self, input_ids: NDArrayOrSymbol, token_types: NDArrayOrSymbol | None = None,
                 valid_length: NDArrayOrSymbol | None = None) -> BlockOutputs:
        self.check_inputs(input_ids, token_types, valid_length)
        if not self.use_token_type_embed:
            token_types = None  # ignored, and kept out of the graph (an unused input warns)
        return super().__call__(input_ids, token_types, valid_length)

    @property
    def returns_extra_outputs(self) -> bool:
        """True when the result is `(encodings, attentions)` rather than one array."""
        return self.output_attention or self.output_all_encodings

    def check_inputs(self, input_ids: NDArrayOrSymbol, token_types: NDArrayOrSymbol | None = None,
                     valid_length: NDArrayOrSymbol | None = None) -> None:
        """Raise ValueError on inputs that would give a silently wrong answer (NDArrays only)."""
        check_inputs(self.config, input_ids, token_types if self.use_token_type_embed else None,
                     valid_length)

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None,
                       position_weight: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol | tuple:
        """input_ids, token_types (batch, seq_len), valid_length (batch,) or None
        -> hidden states (batch, seq_len, units), or `(encodings, attentions)` with the output
        options (see the class docstring)."""
        ids = F.transpose(input_ids)  # (seq_len, batch): embeddings come out time-major
        x = self.word_embed(ids)
        if self.use_token_type_embed:
            types = F.zeros_like(ids) if token_types is None else F.transpose(token_types)
            x = x + self.token_type_embed(types)
        positions = F.slice_like(position_weight, ids, axes=(0,))  # (seq_len, units)
        x = F.broadcast_add(x, F.expand_dims(positions, axis=1))
        x = self.embed_norm(x)
        if self.embed_dropout is not None:
            x = self.embed_dropout(x)
        attention_bias = None
        if valid_length is not None:
            attention_bias = self._attention_bias(F, ids, valid_length)
        if not self.returns_extra_outputs:
            for layer in self.layers:
                x = layer(x, attention_bias)
            return _batch_major_output(F, x, valid_length)
        encodings, attentions = [], []
        for layer in self.layers:
            x = layer(x, attention_bias)
            if self.output_attention:
                x, weights = x
                attentions.append(weights)
            if self.output_all_encodings:
                encodings.append(_batch_major_output(F, x, valid_length))
        if not self.output_all_encodings:
            encodings = _batch_major_output(F, x, valid_length)
        return encodings, attentions

    def _attention_bias(self, F, ids, valid_length):
        """ids (seq_len, batch), valid_length (batch,) -> (batch * num_heads, seq_len, seq_len):
        0 where the key is a real token, -1e4 where it is padding."""
        # Adding it before a plain softmax is ~4x faster on CPU than the length-aware softmax,
        # and exp(-1e4) is exactly 0 in float32, so padding still gets no weight.
        positions = F.reshape(F.cast(F.contrib.arange_like(ids, axis=0), 'float32'), (1, -1))
        is_key = F.broadcast_lesser(positions, F.reshape(F.cast(valid_length, 'float32'), (-1, 1)))
        bias = F.broadcast_axis(F.expand_dims((is_key - 1) * 1e4, axis=1), axis=1,
                                size=self.config.num_heads)
        bias = F.expand_dims(F.reshape(bias, (-3, 0)), axis=1)  # (batch * heads, 1, seq_len)
        # Built full-size once for all layers and cut off from autograd: each layer then adds it
        # elementwise, whose backward is a copy, where a broadcast add's backward would reduce
        # every layer's score gradient onto the mask (~6% of a MiniLM training step, for nothing).
        return F.stop_gradient(F.broadcast_like(bias, bias, lhs_axes=(1,), rhs_axes=(2,)))


def _batch_major_output(F, x, valid_length):
    """(seq_len, batch, units) -> (batch, seq_len, units), zero beyond each valid length."""
    if valid_length is not None:
        x = F.SequenceMask(x, sequence_length=valid_length, use_sequence_length=True, axis=0)
    return F.transpose(x, axes=(1, 0, 2))


def check_inputs(config: BERTConfig | Mapping[str, Any], input_ids: NDArrayOrSymbol,
                 token_types: NDArrayOrSymbol | None = None,
                 valid_length: NDArrayOrSymbol | None = None) -> None:
    """Raise ValueError on NDArray inputs a BERT with `config` ('vocab_size', 'max_length',
    'token_type_vocab_size') would answer silently wrong: input_ids, token_types (batch,
    seq_len) outside the embedding tables or longer than the position table, valid_length
    (batch,) outside 1..seq_len. Symbols (shapes not known yet) pass unchecked."""
    if not isinstance(input_ids, mx.nd.NDArray):
        return
    if input_ids.ndim != 2:
        raise ValueError(f'input_ids must have shape (batch, seq_len); got {input_ids.shape}')
    batch, seq_len = input_ids.shape
    max_length = config['max_length']
    if seq_len > max_length:
        raise ValueError(
            f'sequence length {seq_len} is longer than the position table of this model '
            f'(max_length={max_length}); truncate the input (e.g. BERTSentenceTransform('
            f'max_seq_length={max_length})) or build a model with a larger max_length')
    _check_range('input_ids', input_ids, 0, config['vocab_size'] - 1,
                 f"the vocabulary has {config['vocab_size']} tokens")
    if token_types is not None:
        if token_types.shape != input_ids.shape:
            raise ValueError(f'token_types has shape {token_types.shape} but input_ids has '
                             f'{input_ids.shape}')
        _check_range('token_types', token_types, 0, config['token_type_vocab_size'] - 1,
                     f"the model has {config['token_type_vocab_size']} segment types")
    if valid_length is not None:
        if valid_length.shape != (batch,):
            raise ValueError(f'valid_length must have shape (batch,) = ({batch},); got '
                             f'{valid_length.shape}')
        _check_range('valid_length', valid_length, 1, seq_len,
                     f'every sequence needs 1 to seq_len={seq_len} valid tokens')


def _check_range(name, array, low, high, why):
    values = array.asnumpy()
    if values.size and (values.min() < low or values.max() > high):
        bad = values[(values < low) | (values > high)].flat[0]
        raise ValueError(f'{name} holds {bad:g} outside [{low}, {high}]: {why}')
    if values.size and values.dtype.kind == 'f' and (values != values.round()).any():
        bad = values[values != values.round()].flat[0]
        raise ValueError(f'{name} holds {bad:g}, which is not a whole number')
