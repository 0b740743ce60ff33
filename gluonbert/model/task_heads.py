"""Fine-tuning heads on a BERTModel backbone: classification, regression, tagging, QA, choice."""
import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from .bert import BERTModel
from .layer_norm import PortableExport
from .types import BlockOutputs, NDArrayOrSymbol

POOLINGS = ('cls', 'mean')


def require_backbone(bert: BERTModel, head: str, pooling: str | None) -> None:
    """Check that `bert` is a BERTModel with exactly the parts `head` trains (the pooler only for
    pooling='cls'; pooling None for token-level heads); raise otherwise."""
    uses_pooler = pooling == 'cls'
    if isinstance(bert, tuple):
        raise TypeError(f'{head} got a tuple, not a BERTModel: get_model() returns (model, vocab); '
                        'unpack it first: `bert, vocab = get_model(...)`')
    if not isinstance(bert, BERTModel):
        raise TypeError(f'{head} needs a BERTModel backbone, got {type(bert).__name__}')
    extra = [flag for flag in ('output_attention', 'output_all_encodings') if getattr(bert, flag)]
    if extra:
        raise ValueError(f'{head} reads the last layer only; build the backbone without '
                         f'{" and ".join(f"{flag}=True" for flag in extra)} (get_model(..., '
                         f'{", ".join(f"{flag}=False" for flag in extra)}))')
    unused = [name for name, present in (('use_decoder', bert.use_decoder),
                                         ('use_classifier', bert.use_classifier),
                                         ('use_pooler', bert.use_pooler and not uses_pooler))
              if present]
    if unused or (uses_pooler and not bert.use_pooler):
        wanted = f'use_pooler={uses_pooler}, use_decoder=False, use_classifier=False'
        other = {'cls': "; or pass pooling='mean' to pool the tokens without a pooler",
                 'mean': "; or pass pooling='cls' to use the backbone's pooler"}.get(pooling, '')
        raise ValueError('{}{} trains the encoder{} only; build the backbone with get_model(..., '
                         '{}) so no unused weights get stale gradients or are exported{}'.format(
                             head, f" (pooling='{pooling}')" if pooling else '',
                             ' and pooler' if uses_pooler else '', wanted,
                             other if bert.use_pooler != uses_pooler else ''))


def mean_over_valid(F, sequence: NDArrayOrSymbol,
                    valid_length: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
    """(batch, seq_len, units) hidden states, (batch,) lengths of any numeric dtype -> (batch,
    units) mean over the first valid_length positions ([CLS] and [SEP] included, as
    sentence-transformers pools); over all positions without lengths. The mask is built in the
    hidden states' dtype, so float16 graphs stay float16."""
    if valid_length is None:
        return F.mean(sequence, axis=1)
    ones = F.ones_like(F.slice_axis(sequence, axis=2, begin=0, end=1))  # (batch, seq_len, 1)
    mask = F.SequenceMask(ones, sequence_length=valid_length, use_sequence_length=True, axis=1)
    return F.broadcast_div(F.sum(F.broadcast_mul(sequence, mask), axis=1), F.sum(mask, axis=1))


class _TaskHead(PortableExport, HybridBlock):
    """Shared plumbing: backbone checks, input validation, dropout, sentence pooling."""
    pooling = 'cls'  # sentence heads: 'cls' or 'mean'; token-level heads: None

    def __init__(self, bert: BERTModel, dropout: float = 0.0, pooling: str | None = None,
                 **kwargs) -> None:
        if pooling is not None:
            if self.pooling is None:
                raise TypeError(f'{type(self).__name__} scores every token; it takes no pooling')
            if pooling not in POOLINGS:
                raise ValueError(f'pooling must be one of {POOLINGS}; got {pooling!r}')
            self.pooling = pooling
        require_backbone(bert, type(self).__name__, self.pooling)
        super().__init__(**kwargs)
        self.bert = bert
        with self.name_scope():
            self.dropout = nn.Dropout(dropout) if dropout else None

    def initialize_head(self, init: mx.init.Initializer | str | None = None,
                        ctx: mx.Context | list[mx.Context] | None = None) -> None:
        """Initialize the head's own layers (N(0, 0.02) by default), leaving the backbone as is.

        ctx: default the contexts the backbone lives on."""
        backbone = {id(p) for p in self.bert.collect_params().values()}
        if ctx is None:
            ctx = self.bert.collect_params().list_ctx()
        for param in self.collect_params().values():
            if id(param) not in backbone:
                param.initialize(init=init if init is not None else mx.init.Normal(0.02),
                                 ctx=ctx, force_reinit=True)

    @property
    def uses_pooler(self) -> bool:
        """Whether the head reads the backbone's pooler (pooling='cls')."""
        return self.pooling == 'cls'

    @property
    def units(self) -> int:
        """Width of the backbone's hidden states."""
        return self.bert.config['units']

    def _drop(self, x):
        return x if self.dropout is None else self.dropout(x)

    def _features(self, F, input_ids, token_types, valid_length):
        """Encoder output: pooled (batch, units) for sentence heads, else (batch, seq_len, "
          "units)."""
        sequence = self.bert.encoder(input_ids, token_types, valid_length)
        if self.pooling == 'cls':
            sequence = self.bert.pooler(sequence)
        elif self.pooling == 'mean':
            sequence = mean_over_valid(F, sequence, valid_length)
        return self._drop(sequence)

    def __call__(self, input_ids: NDArrayOrSymbol, token_types: NDArrayOrSymbol | None = None,
                 valid_length: NDArrayOrSymbol | None = None) -> BlockOutputs:
        if self._active:  # imperative calls reach the backbone's own __call__, which checks
            self.bert.encoder.check_inputs(input_ids, token_types, valid_length)
        if not self.bert.encoder.use_token_type_embed:
            token_types = None  # no segment embedding: ignored and kept out of the graph
        return super().__call__(input_ids, token_types, valid_length)


class BERTClassifier(_TaskHead):
    """Sentence(-pair) classification: pooled [CLS] (or the mean of the valid tokens, for
    pooling='mean' on a backbone built with use_pooler=False) -> logits (batch, num_classes)."""

    def __init__(self, bert: BERTModel, num_classes: int = 2, dropout: float = 0.0,
                 pooling: str = 'cls', **kwargs) -> None:
        super().__init__(bert, dropout, pooling, **kwargs)
        with self.name_scope():
            self.classifier = nn.Dense(num_classes, in_units=self.units, prefix='classifier_')

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
        """(batch, seq_len) ids, types; (batch,) lengths -> (batch, num_classes)."""
        return self.classifier(self._features(F, input_ids, token_types, valid_length))


class BERTRegression(_TaskHead):
    """Sentence(-pair) regression (e.g. STS-B): pooled [CLS] (or mean, see BERTClassifier)
    -> score (batch, 1)."""

    def __init__(self, bert: BERTModel, dropout: float = 0.0, pooling: str = 'cls',
                 **kwargs) -> None:
        super().__init__(bert, dropout, pooling, **kwargs)
        with self.name_scope():
            self.regression = nn.Dense(1, in_units=self.units, prefix='regression_')

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
        """(batch, seq_len) ids, types; (batch,) lengths -> (batch, 1)."""
        return self.regression(self._features(F, input_ids, token_types, valid_length))


class BERTForTokenClassification(_TaskHead):
    """Per-token tagging (NER, POS): hidden states -> logits (batch, seq_len, num_classes)."""
    pooling = None

    def __init__(self, bert: BERTModel, num_classes: int, dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(bert, dropout, **kwargs)
        with self.name_scope():
            self.classifier = nn.Dense(num_classes, in_units=self.units, flatten=False,
                                       prefix='classifier_')

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
        """(batch, seq_len) ids, types; (batch,) lengths -> (batch, seq_len, num_classes)."""
        return self.classifier(self._features(F, input_ids, token_types, valid_length))


class BERTForQA(_TaskHead):
    """Extractive QA: hidden states -> (start_logits, end_logits), each (batch, seq_len).

    Positions at or beyond valid_length get -1e4, so a softmax over positions ignores padding.
    """
    pooling = None

    def __init__(self, bert: BERTModel, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(bert, dropout, **kwargs)
        with self.name_scope():
            self.span = nn.Dense(2, in_units=self.units, flatten=False, prefix='span_')

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None
                       ) -> tuple[NDArrayOrSymbol, NDArrayOrSymbol]:
        """(batch, seq_len) ids, types; (batch,) lengths -> 2 x (batch, seq_len)."""
        logits = self.span(self._features(F, input_ids, token_types, valid_length))
        if valid_length is not None:
            logits = F.SequenceMask(logits, sequence_length=valid_length,
                                    use_sequence_length=True, value=-1e4, axis=1)
        start, end = F.split(logits, num_outputs=2, axis=2, squeeze_axis=True)
        return start, end


class BERTForMultipleChoice(_TaskHead):
    """Multiple choice (SWAG-style): (batch, num_choices, seq_len) -> scores (batch, num_choices);
    pooling as in BERTClassifier."""

    def __init__(self, bert: BERTModel, dropout: float = 0.0, pooling: str = 'cls',
                 **kwargs) -> None:
        super().__init__(bert, dropout, pooling, **kwargs)
        with self.name_scope():
            self.scorer = nn.Dense(1, in_units=self.units, prefix='scorer_')

    def __call__(self, input_ids: NDArrayOrSymbol, token_types: NDArrayOrSymbol | None = None,
                 valid_length: NDArrayOrSymbol | None = None) -> BlockOutputs:
        if isinstance(input_ids, mx.nd.NDArray):
            if input_ids.ndim != 3:
                raise ValueError('input_ids must have shape (batch, num_choices, seq_len); got '
                                 f'{input_ids.shape}')
            if self._active:  # else the backbone's own __call__ checks the flattened inputs
                self.bert.encoder.check_inputs(
                    input_ids.reshape((-3, 0)),
                    None if token_types is None else token_types.reshape((-3, 0)),
                    None if valid_length is None else valid_length.reshape((-1,)))
        if not self.bert.encoder.use_token_type_embed:
            token_types = None  # no segment embedding: ignored and kept out of the graph
        return HybridBlock.__call__(self, input_ids, token_types, valid_length)

    def hybrid_forward(self, F, input_ids: NDArrayOrSymbol,
                       token_types: NDArrayOrSymbol | None = None,
                       valid_length: NDArrayOrSymbol | None = None) -> NDArrayOrSymbol:
        """(batch, num_choices, seq_len) ids, types; (batch, num_choices) lengths
        -> (batch, num_choices)."""
        flat_types = None if token_types is None else F.reshape(token_types, (-3, 0))
        flat_length = None if valid_length is None else F.reshape(valid_length, (-1,))
        scores = self.scorer(self._features(F, F.reshape(input_ids, (-3, 0)), flat_types,
                                            flat_length))  # (batch * num_choices, 1)
        first_token = F.slice_axis(input_ids, axis=2, begin=0, end=1)  # (batch, num_choices, 1)
        return F.reshape(F.reshape_like(scores, first_token), (0, -1))
