"""BERTModel: the encoder plus optional pooler, next-sentence and masked-LM heads."""
import mxnet as mx
from mxnet.gluon import HybridBlock

from .config import BERTConfig
from .encoder import BERTEncoder
from .heads import MLMDecoder, NSClassifier, Pooler
from .layer_norm import PortableExport
from .types import BlockOutputs, NDArrayOrSymbol


class BERTModel(PortableExport, HybridBlock):
    """BERT with GluonNLP 0.10's call and output order.

    model(input_ids, token_types, valid_length=None, masked_positions=None) returns
    sequence_output (batch, seq_len, units)
    [, pooled (batch, units)] [, nsp_logits (batch, 2)] [, mlm_logits (batch, num_masked, vocab)]
    as a tuple, or the sequence output alone when no head is used.

    With the encoder's output options (BERTEncoder(output_attention=True,
    output_all_encodings=True), or get_model(...) with the same flags) the sequence output is the
    list of every layer's (batch, seq_len, units) when output_all_encodings is set, and the list
    of every layer's attention weights (batch, num_heads, seq_len, seq_len) follows it when
    output_attention is set, as in GluonNLP 0.10. The heads read the last layer either way.
    """

    def __init__(self, encoder: BERTEncoder, use_pooler: bool = True, use_decoder: bool = True,
                 use_classifier: bool = True, **kwargs) -> None:
        if not isinstance(encoder, BERTEncoder):
            raise TypeError(f'BERTModel needs a BERTEncoder, got {type(encoder).__name__}')
        if use_classifier and not use_pooler:
            raise ValueError('use_classifier=True needs use_pooler=True: the next-sentence '
                             'classifier reads the pooled [CLS] output')
        super().__init__(**kwargs)
        self.use_pooler, self.use_decoder, self.use_classifier = (
            use_pooler, use_decoder, use_classifier)
        cfg = encoder.config
        init = mx.init.Normal(0.02)
        with self.name_scope():
            self.encoder = encoder
            if use_pooler:
                self.pooler = Pooler(cfg.units, init, prefix='pooler_')
            if use_classifier:
                self.classifier = NSClassifier(cfg.units, init, prefix='classifier_')
            if use_decoder:
                self.decoder = MLMDecoder(cfg.units, cfg.vocab_size, encoder.word_embed.weight,
                                          cfg.activation, cfg.layer_norm_eps, init,
                                          prefix='decoder_')

    @property
    def output_attention(self) -> bool:
        """Whether every layer's attention weights are returned (set on the encoder)."""
        return self.encoder.output_attention

    @property
    def output_all_encodings(self) -> bool:
        """Whether every layer's hidden states are returned (set on the encoder)."""
        return self.encoder.output_all_encodings

    @property
    def config(self) -> BERTConfig:
        """The encoder's hyperparameters (a BERTConfig, readable as a dict)."""
        return self.encoder.config

    def __call__(self, input_ids: NDArrayOrSymbol, token_types: NDArrayOrSymbol | None = None,
                 valid_length: NDArrayOrSymbol | None = None,
                 masked_positions: NDArrayOrSymbol | None = None) -> BlockOutputs:
        if self._active:  # imperative calls reach the encoder's own __call__, which checks
            self.encoder.check_inputs(input_ids, token_types, valid_length)
        if self.use_decoder and masked_positions is None:
            raise ValueError('this BERTModel has an MLM decoder (use_decoder=True), so it needs '
                             'masked_positions (batch, num_masked); build it with '
                             'use_decoder=False to encode without one')
        if not self.use_decoder and masked_positions is not None:
            raise ValueError('masked_positions given but the model has no MLM decoder; '
                             'build it with use_decoder=True')
        if isinstance(masked_positions, mx.nd.NDArray):
            _check_masked_positions(masked_positions, input_ids.shape)
        if not self.encoder.use_token_type_embed:
            token_types = None  # no segment embedding: ignored, as in GluonNLP
        return super().__call__(input_ids, token_types, valid_length, masked_positions)

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None,
                       masked_positions: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol | tuple:
        """See the class docstring for shapes."""
        encoded = self.encoder(input_ids, token_types, valid_length)
        if self.encoder.returns_extra_outputs:
            encodings, attentions = encoded
            sequence = encodings[-1] if self.encoder.output_all_encodings else encodings
            outputs = [encodings] + ([attentions] if self.encoder.output_attention else [])
        else:
            sequence = encoded
            outputs = [sequence]
        if self.use_pooler:
            pooled = self.pooler(sequence)
            outputs.append(pooled)
            if self.use_classifier:
                outputs.append(self.classifier(pooled))
        if self.use_decoder:
            outputs.append(self.decoder(sequence, masked_positions))
        return tuple(outputs) if len(outputs) > 1 else outputs[0]


def _check_masked_positions(masked_positions, input_shape):
    if masked_positions.ndim != 2 or masked_positions.shape[0] != input_shape[0]:
        raise ValueError('masked_positions must have shape (batch, num_masked) with '
                         f'batch={input_shape[0]}; '
                         f'got {masked_positions.shape}')
    values = masked_positions.asnumpy()
    if values.size and (values.min() < 0 or values.max() >= input_shape[1]):
        raise ValueError(f'masked_positions must lie in [0, seq_len={input_shape[1]}); got values '
                         f'in [{values.min()}, {values.max()}]')
