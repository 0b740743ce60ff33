"""Sentence(-pair) classification and regression: features, batches, prediction, metrics.

The reusable middle of `model_zoo/bert/finetune_classifier.py` and `make demo`: everything
between a Task's files and the TrainingLoop, and from a trained net back to task metrics.
"""
import collections
from collections.abc import Callable, Iterator, Sequence

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock
from tqdm.auto import tqdm

from ..data import batchify
from ..data.sampler import FixedBucketSampler, SortedBucketSampler
from ..data.transforms import BERTSentenceTransform
from ..data.tasks import Task
from ..data.tokenizer import BERTTokenizer
from .distributed import Backend, allreduce_numpy
from .loop import check_finite_outputs

# One example's model inputs (+ label) and the id of the text it came from; with sliding windows
# one text yields several features sharing an example_id.
Feature = collections.namedtuple('Feature', ['input_ids', 'token_types', 'valid_length', 'label',
                                             'example_id'])


def make_features(task: Task, dataset: Sequence, tokenizer: BERTTokenizer, max_len: int,
                  labeled: bool = True, window_stride: int | None = None,
                  progress: bool = True) -> tuple[list[Feature], str]:
    """TextDataset of (text[, text_b][, label]) -> (list of Feature, truncation report str).

    window_stride: None truncates long texts (counted in the report); an int splits a long
    single text into windows of max_len - 2 tokens starting every `window_stride` tokens
    (sliding-window mode; predictions are averaged over an example's windows).
    """
    if window_stride is not None and task.is_pair:
        raise ValueError(f'sliding windows are for single-text tasks; {task.name} is a pair task')
    if window_stride is not None and not 0 < window_stride <= max_len - 2:
        raise ValueError(f'window_stride={window_stride} must be in '
                         f'[1, max_len - 2 = {max_len - 2}]')
    transform = task.transform(tokenizer, max_len, pad=False, labeled=labeled)
    sentence = BERTSentenceTransform(tokenizer, max_len, pad=False, pair=False)
    features, windowed = [], 0
    for example_id, sample in enumerate(tqdm(dataset, desc='tokenizing', disable=not progress,
                                             unit='text', mininterval=1.0)):
        label = transform.label_id(sample[-1]) if labeled else -1
        if window_stride is None:
            inputs = transform(sample)[:3]
            features.append(Feature(*inputs, label, example_id))
            continue
        ids = tokenizer.encode_ids(sample[0])
        span = max_len - 2
        # window starts 0, stride, ... until a window reaches the end of the text
        starts = list(range(0, max(len(ids) - span, 0) + window_stride, window_stride))
        windowed += len(starts) > 1
        for start in starts:
            window = sentence.from_ids(ids[start:start + span])
            features.append(Feature(*window.model_inputs(), label, example_id))
    if window_stride is None:
        report = transform.truncation.report()
    else:
        report = (f'{windowed} of {len(dataset)} texts were split into sliding windows of '
                  f'{max_len - 2} tokens (stride {window_stride})')
    return features, report


def training_batches(task: Task, features: Sequence[Feature], batch_size: int, seed: int = 0,
                     num_buckets: int = 10, ratio: float = 0.0, num_shards: int = 1,
                     shard_index: int = 0) -> tuple[Callable[[int], Iterator[tuple]], int]:
    """-> (epoch -> iterator of (input_ids, token_types, valid_length, label), batches/epoch).

    Length-bucketed and shuffled with a per-epoch seed, so a resumed run sees the same order.
    num_shards > 1 (one per worker): the sampler groups its batches in rounds of num_shards and
    this worker takes batch `shard_index` of each round, so all workers get the same number of
    batches (the last round is completed with the epoch's first batches).
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f'shard_index={shard_index} must be in [0, num_shards={num_shards})')
    lengths = [int(f.valid_length) for f in features]
    fn = batchify.bert_inputs('float32' if task.is_regression else 'int32')

    def sampler(epoch):
        return FixedBucketSampler(lengths, batch_size, num_buckets=num_buckets, ratio=ratio,
                                  shuffle=True, seed=seed + epoch,
                                  num_shards=num_shards if num_shards > 1 else 0)

    def epoch_batches(epoch):
        for ids in sampler(epoch):
            ids = ids[shard_index] if num_shards > 1 else ids
            yield fn([features[i][:4] for i in ids])
    return epoch_batches, len(sampler(0))


def predict(net: HybridBlock, features: Sequence[Feature], batch_size: int = 64,
            ctx: mx.Context = mx.cpu(), progress: bool = True) -> np.ndarray:
    """Outputs (num_features, num_outputs) numpy in feature order; batches are sorted by length
    so little compute goes to padding."""
    sampler = SortedBucketSampler([int(f.valid_length) for f in features], batch_size, mult=None)
    fn = batchify.bert_inputs()
    outputs = []
    for ids in tqdm(sampler, desc='predicting', disable=not progress, unit='batch'):
        inputs = [a.as_in_context(ctx) for a in fn([features[i][:3] for i in ids])]
        outputs.append(net(*inputs).asnumpy())
    outputs = np.concatenate(outputs)
    check_finite_outputs(outputs, f'the outputs for {len(features)} examples')
    return sampler.unsort(outputs)


def aggregate_windows(outputs: np.ndarray, features: Sequence[Feature]
                      ) -> tuple[np.ndarray, list]:
    """Average the outputs of each example's windows -> (num_examples, num_outputs), labels."""
    example_ids = np.array([f.example_id for f in features])
    count = example_ids.max() + 1
    sums = np.zeros((count, outputs.shape[1]), dtype='float64')
    np.add.at(sums, example_ids, outputs)
    sizes = np.bincount(example_ids, minlength=count)[:, None]
    labels = np.zeros(count, dtype=np.asarray(features[0].label).dtype)
    labels[example_ids] = [f.label for f in features]
    return (sums / sizes).astype('float32'), labels


def evaluate(net: HybridBlock, task: Task, features: Sequence[Feature], batch_size: int = 64,
             ctx: mx.Context = mx.cpu(), progress: bool = True,
             backend: Backend | None = None) -> dict[str, float]:
    """Task metrics on labeled features (windows averaged per example) -> dict name -> value.

    backend (distributed, synchronous, several workers): each worker predicts every
    num_workers-th feature and the outputs are all-reduced, so every worker gets the metrics of
    the whole set (a collective: all workers must call it). dist_async: the caller predicts
    everything."""
    if backend is None or not backend.shares_evaluation:
        outputs = predict(net, features, batch_size, ctx, progress)
    else:
        outputs = _predict_sharded(net, features, batch_size, ctx, progress, backend)
    outputs, labels = aggregate_windows(outputs, features)
    metric = task.metric()
    metric.update(labels, outputs[:, 0] if task.is_regression else outputs)
    return dict(metric.get_name_value())


def _predict_sharded(net, features, batch_size, ctx, progress, backend):
    """predict() over this worker's share of the features, summed with the other workers'
    shares into the (num_features, num_outputs) outputs of all of them."""
    mine = list(range(backend.rank, len(features), backend.num_workers))
    # every worker needs the output width for the collective, even with no share (tiny sets)
    width = net(*[a.as_in_context(ctx) for a in batchify.bert_inputs()([features[0][:3]])]).shape[1]
    outputs = np.zeros((len(features), width), dtype='float32')
    if mine:
        outputs[mine] = predict(net, [features[i] for i in mine], batch_size, ctx,
                                progress and backend.is_root)
    return allreduce_numpy(backend, outputs)


def task_loss(task: Task, class_weights: Sequence[float] | None = None
              ) -> Callable[..., mx.nd.NDArray]:
    """The per-sample loss for the TrainingLoop: softmax CE (optionally class-weighted) or L2."""
    if task.is_regression:
        if class_weights is not None:
            raise ValueError(f'class weights need a classification task, not {task.name}')
        l2 = mx.gluon.loss.L2Loss()

        def regression_loss(net, ids, types, lengths, targets):
            return l2(net(ids, types, lengths).reshape((-1,)), targets)
        return regression_loss
    from .losses import WeightedSoftmaxCELoss
    ce = WeightedSoftmaxCELoss(class_weights)

    def classification_loss(net, ids, types, lengths, labels):
        return ce(net(ids, types, lengths), labels)
    return classification_loss
