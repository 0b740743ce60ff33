"""Task losses that the training loop consumes as per-sample values."""
from collections.abc import Sequence

import mxnet as mx
from mxnet import gluon


class WeightedSoftmaxCELoss:
    """Softmax cross-entropy with optional per-class weights: (batch, C), (batch,) -> (batch,).

    A weight of w for class c scales the loss of every sample labelled c by w, the usual remedy
    for imbalanced labels (e.g. weights = n_samples / (n_classes * count_c)). The weights are
    copied once to each context the labels arrive on.
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self.class_weights is not None and min(self.class_weights) < 0:
            raise ValueError(f'class weights must be non-negative, got {class_weights}')
        self._ce = gluon.loss.SoftmaxCrossEntropyLoss()
        self._on_context = {}

    def __call__(self, logits: mx.nd.NDArray, labels: mx.nd.NDArray) -> mx.nd.NDArray:
        """logits (batch, num_classes), labels (batch,) -> loss (batch,)."""
        loss = self._ce(logits, labels)
        if self.class_weights is None:
            return loss
        ctx = labels.context
        if ctx not in self._on_context:
            self._on_context[ctx] = mx.nd.array(self.class_weights, ctx=ctx)
        return loss * mx.nd.take(self._on_context[ctx], labels)


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """n / (num_classes * count_c) for each class c: rare classes weigh more."""
    counts = [0] * num_classes
    for label in labels:
        counts[int(label)] += 1
    if 0 in counts:
        raise ValueError(f'class {counts.index(0)} never occurs in the labels; cannot balance it')
    return [len(labels) / (num_classes * c) for c in counts]
