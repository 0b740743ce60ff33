"""SQuAD v1.1 fine-tuning: windows -> batches, the span loss, logits -> answers -> EM/F1.

The reusable middle of `model_zoo/bert/finetune_squad.py`: windowing and answer decoding live in
`gluonbert.data.squad` (SquadTransform, predict_answers); this module connects them to a
BERTForQA net and the TrainingLoop.
"""
from collections.abc import Callable, Iterator, Sequence

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock
from tqdm.auto import tqdm

from .. import metrics
from ..data import batchify
from ..data.sampler import FixedBucketSampler, SortedBucketSampler
from ..data.squad import SquadExample, SquadFeatures, gold_answers, predict_answers
from .loop import check_finite_outputs


def _inputs(feature):
    """A window cut to its valid length: (input_ids (n,), token_types (n,), valid_length)."""
    length = int(feature.valid_length)
    return feature.input_ids[:length], feature.token_types[:length], feature.valid_length


_BATCHIFY_INPUTS = batchify.Tuple(batchify.Pad(pad_val=0, dtype='int32'),
                                  batchify.Pad(pad_val=0, dtype='int32'), batchify.Stack('int32'))
_BATCHIFY_TRAIN = batchify.Tuple(batchify.Pad(pad_val=0, dtype='int32'),
                                 batchify.Pad(pad_val=0, dtype='int32'), batchify.Stack('int32'),
                                 batchify.Stack('int32'), batchify.Stack('int32'))


def batch_inputs(features: Sequence[SquadFeatures]) -> tuple[mx.nd.NDArray, ...]:
    """SquadFeatures -> (input_ids (B, n), token_types (B, n), valid_length (B,)) NDArrays,
    padded to the longest window of the batch."""
    return _BATCHIFY_INPUTS([_inputs(f) for f in features])


def training_batches(features: Sequence[SquadFeatures], batch_size: int, seed: int = 0,
                     num_buckets: int = 10) -> tuple[Callable[[int], Iterator[tuple]], int]:
    """Labeled windows -> (epoch -> iterator of (input_ids, token_types, valid_length,
    start_position, end_position), batches per epoch).

    Windows are bucketed by length and shuffled with a per-epoch seed, so a resumed run sees the
    same order. Windows without the answer keep start = end = 0 ([CLS]), as in Google's
    run_squad for v1.1.
    """
    if not features:
        raise ValueError('no training windows: the training file has no questions')
    lengths = [int(f.valid_length) for f in features]

    def sampler(epoch):
        return FixedBucketSampler(lengths, batch_size, num_buckets=num_buckets, shuffle=True,
                                  seed=seed + epoch)

    def epoch_batches(epoch):
        for ids in sampler(epoch):
            yield _BATCHIFY_TRAIN([_inputs(features[i]) + (features[i].start_position,
                                                           features[i].end_position)
                                   for i in ids])
    return epoch_batches, len(sampler(0))


def span_loss() -> Callable[..., mx.nd.NDArray]:
    """The per-sample loss for the TrainingLoop: mean of the start and end softmax CE -> (B,)."""
    ce = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def loss(net, input_ids, token_types, valid_length, start_position, end_position):
        start_logits, end_logits = net(input_ids, token_types, valid_length)
        return (ce(start_logits, start_position) + ce(end_logits, end_position)) / 2
    return loss


def predict_logits(net: HybridBlock, features: Sequence[SquadFeatures], batch_size: int = 64,
                   ctx: mx.Context = mx.cpu(), progress: bool = True
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """BERTForQA over all windows -> (start_logits, end_logits): lists in feature order of
    float32 arrays (valid_length,) each (logits beyond a window's length are padding)."""
    if not features:
        return [], []
    sampler = SortedBucketSampler([int(f.valid_length) for f in features], batch_size, mult=None)
    starts, ends = [None] * len(features), [None] * len(features)
    for ids in tqdm(sampler, desc='predicting', disable=not progress, unit='batch'):
        inputs = [a.as_in_context(ctx) for a in batch_inputs([features[i] for i in ids])]
        start_logits, end_logits = (x.asnumpy() for x in net(*inputs))
        for row, i in enumerate(ids):
            length = int(features[i].valid_length)
            starts[i], ends[i] = start_logits[row, :length], end_logits[row, :length]
    check_finite_outputs(np.concatenate(starts + ends), 'the span logits')
    return starts, ends


def predict(net: HybridBlock, examples: Sequence[SquadExample], features: Sequence[SquadFeatures],
            n_best_size: int = 20, max_answer_length: int = 30, batch_size: int = 64,
            ctx: mx.Context = mx.cpu(), progress: bool = True) -> dict[str, str]:
    """{qas_id: answer text} for every example: the best-scoring span over all its windows
    (see gluonbert.data.squad.predict_answers)."""
    start_logits, end_logits = predict_logits(net, features, batch_size, ctx, progress)
    return predict_answers(examples, features, start_logits, end_logits, n_best_size,
                           max_answer_length)


def evaluate(net: HybridBlock, examples: Sequence[SquadExample], features: Sequence[SquadFeatures],
             n_best_size: int = 20, max_answer_length: int = 30, batch_size: int = 64,
             ctx: mx.Context = mx.cpu(), progress: bool = True
             ) -> tuple[dict[str, float], dict[str, str]]:
    """-> ({'exact_match', 'f1'} in %, official SQuAD v1.1 scoring; predictions {qas_id: text})."""
    predictions = predict(net, examples, features, n_best_size, max_answer_length, batch_size,
                          ctx, progress)
    return metrics.squad_evaluate(gold_answers(examples), predictions), predictions

