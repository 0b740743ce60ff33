"""Masked-LM + next-sentence pretraining: the model with both heads, batches, loss, accuracies.

The reusable middle of `model_zoo/bert/pretrain.py`: examples come from
`gluonbert.data.pretraining.PretrainingExampleBuilder`; this module feeds them to a BERTModel
with pooler, NSP classifier and MLM decoder, and scores held-out examples.
"""
import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence

import mxnet as mx
import numpy as np
from tqdm.auto import tqdm

from ..data import batchify
from ..data.pretraining import PretrainingExample
from ..data.sampler import FixedBucketSampler, SortedBucketSampler
from ..model.bert import BERTModel
from .loop import check_finite_outputs

_BATCHIFY = batchify.Tuple(
    batchify.Pad(pad_val=0, dtype='int32'),  # input_ids
    batchify.Pad(pad_val=0, dtype='int32'),  # token_types
    batchify.Stack('int32'),  # valid_length
    batchify.Stack('int32'),  # masked_positions
    batchify.Stack('int32'),  # masked_ids
    batchify.Stack('float32'),  # masked_weights
    batchify.Stack('int32'))  # next_sentence_label


def batch_examples(examples: Sequence[PretrainingExample]) -> tuple[mx.nd.NDArray, ...]:
    """PretrainingExamples -> (input_ids (B, L), token_types (B, L), valid_length (B,),
    masked_positions (B, P), masked_ids (B, P), masked_weights (B, P), nsp_labels (B,)),
    padded to the longest example of the batch."""
    return _BATCHIFY(examples)


def training_batches(examples: Sequence[PretrainingExample], batch_size: int, seed: int = 0,
                     num_buckets: int = 10, batches_per_epoch: int | None = None
                     ) -> tuple[Callable[[int], Iterator[tuple]], int]:
    """-> (epoch -> iterator of batch_examples tuples, batches per epoch).

    The data is an endless stream of passes, pass k bucketed by length and shuffled with seed
    + k; epoch e is the e-th run of `batches_per_epoch` batches of that stream (default: one
    pass). A fixed step budget (--max-steps) is then one epoch of that many batches, cycling
    through the data. The order depends only on the seed, so a resumed run sees the same one.
    """
    if not examples:
        raise ValueError('no pretraining examples: the corpus is empty or too short')
    lengths = [int(e.valid_length) for e in examples]

    def sampler(k):
        return FixedBucketSampler(lengths, batch_size, num_buckets=num_buckets, shuffle=True,
                                  seed=seed + k)
    per_pass = len(sampler(0))
    per_epoch = batches_per_epoch or per_pass

    def stream(start):
        k, skip = divmod(start, per_pass)
        while True:
            yield from itertools.islice(sampler(k), skip, None)
            k, skip = k + 1, 0

    def epoch_batches(epoch):
        for ids in itertools.islice(stream(epoch * per_epoch), per_epoch):
            yield batch_examples([examples[i] for i in ids])
    return epoch_batches, per_epoch


def _token_ce(mlm_logits, masked_ids):
    """Cross-entropy of each masked position: logits (B, P, V), ids (B, P) -> (B, P)."""
    return -mx.nd.pick(mx.nd.log_softmax(mlm_logits, axis=-1), masked_ids, axis=-1)


def masked_lm_loss(mlm_logits: mx.nd.NDArray, masked_ids: mx.nd.NDArray,
                   masked_weights: mx.nd.NDArray) -> mx.nd.NDArray:
    """Per-sample MLM cross-entropy, averaged over each sample's masked positions: logits
    (B, P, V), ids (B, P), weights (B, P) with 0 on padding -> (B,)."""
    count = mx.nd.maximum(masked_weights.sum(axis=1), 1)
    return (_token_ce(mlm_logits, masked_ids) * masked_weights).sum(axis=1) / count


def pretraining_loss() -> Callable[..., mx.nd.NDArray]:
    """The per-sample loss for the TrainingLoop: MLM cross-entropy (mean over the sample's
    masked positions) + NSP cross-entropy -> (B,).

    Each sequence weighs the same; Google's code averages over all masked tokens of a batch
    instead, which differs only as the number of predictions varies between sequences.
    """
    nsp_ce = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def loss(net, input_ids, token_types, valid_length, masked_positions, masked_ids,
             masked_weights, nsp_labels):
        _, _, nsp_logits, mlm_logits = net(input_ids, token_types, valid_length,
                                           masked_positions)
        return (masked_lm_loss(mlm_logits, masked_ids, masked_weights) +
                nsp_ce(nsp_logits, nsp_labels))
    return loss


def mlm_accuracy_counts(mlm_logits: mx.nd.NDArray | np.ndarray,
                        masked_ids: mx.nd.NDArray | np.ndarray,
                        masked_weights: mx.nd.NDArray | np.ndarray) -> tuple[int, int]:
    """(correct, total) over masked positions with weight > 0: logits (B, P, V), ids and
    weights (B, P); numpy or NDArray."""
    logits, ids, weights = (a.asnumpy() if hasattr(a, 'asnumpy') else np.asarray(a)
                            for a in (mlm_logits, masked_ids, masked_weights))
    real = weights > 0
    return int(np.sum((logits.argmax(axis=-1) == ids) & real)), int(real.sum())


def evaluate(net: BERTModel, examples: Sequence[PretrainingExample], batch_size: int = 64,
             ctx: mx.Context = mx.cpu(), progress: bool = True) -> dict[str, float]:
    """Held-out scores -> {'mlm_accuracy', 'mlm_loss', 'nsp_accuracy', 'nsp_loss'}: MLM over all
    masked tokens, NSP over all examples (losses are mean cross-entropies)."""
    if not examples:
        raise ValueError('no held-out examples to evaluate')
    sampler = SortedBucketSampler([int(e.valid_length) for e in examples], batch_size, mult=None)
    mlm_correct = mlm_total = nsp_correct = 0
    mlm_ce = nsp_ce = 0.0
    for ids in tqdm(sampler, desc='evaluating', disable=not progress, unit='batch'):
        batch = [a.as_in_context(ctx) for a in batch_examples([examples[i] for i in ids])]
        inputs, (masked_ids, weights, labels) = batch[:4], batch[4:]
        _, _, nsp_logits, mlm_logits = net(*inputs)
        correct, total = mlm_accuracy_counts(mlm_logits, masked_ids, weights)
        mlm_correct, mlm_total = mlm_correct + correct, mlm_total + total
        mlm_ce += float((_token_ce(mlm_logits, masked_ids) * weights).sum().asscalar())
        nsp_log_probs = mx.nd.log_softmax(nsp_logits, axis=-1)
        nsp_ce -= float(mx.nd.pick(nsp_log_probs, labels, axis=-1).sum().asscalar())
        nsp_correct += int((nsp_logits.argmax(axis=-1) == labels.astype('float32'))
                           .sum().asscalar())
    scores = np.array([mlm_ce, nsp_ce])
    check_finite_outputs(scores, 'the held-out MLM and NSP cross-entropies')
    return dict(mlm_accuracy=mlm_correct / max(mlm_total, 1), mlm_loss=mlm_ce / max(mlm_total, 1),
                nsp_accuracy=nsp_correct / len(examples), nsp_loss=nsp_ce / len(examples))


def with_pretraining_heads(bert: BERTModel, ctx: mx.Context | list[mx.Context] = mx.cpu()
                           ) -> tuple[BERTModel, list[str]]:
    """A BERTModel with pooler, NSP classifier and MLM decoder on `bert`'s encoder -> (model,
    names of the heads initialized fresh). `bert` itself is returned when it has all three;
    otherwise its pooler (if any) is copied and the missing heads get N(0, 0.02) weights."""
    present = dict(pooler=bert.use_pooler, classifier=bert.use_classifier,
                   decoder=bert.use_decoder)
    missing = [head for head, there in present.items() if not there]
    if not missing:
        return bert, []
    model = BERTModel(bert.encoder, use_pooler=True, use_decoder=True, use_classifier=True)
    with warnings.catch_warnings():  # the shared encoder's parameters are initialized already
        warnings.filterwarnings('ignore', message='.*already initialized.*')
        model.initialize(ctx=ctx)
    if bert.use_pooler:
        source = bert.pooler._collect_params_with_prefix()
        for name, param in model.pooler._collect_params_with_prefix().items():
            param.set_data(source[name].data())
    return model, missing
