"""Task losses that the training loop consumes as per-sample values."""
from mxnet import gluon


class WeightedSoftmaxCELoss(gluon.HybridBlock):
    """Softmax cross-entropy with optional per-class weights: (batch, C), (batch,) -> (batch,).

    A weight of w for class c scales the loss of every sample labelled c by w, the usual remedy
    for imbalanced labels (e.g. weights = n_samples / (n_classes * count_c)).
    """

    def __init__(self, class_weights=None, **kwargs):
        super().__init__(**kwargs)
        self._class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self._class_weights is not None and min(self._class_weights) < 0:
            raise ValueError('class weights must be non-negative, got {}'.format(class_weights))
        with self.name_scope():
            self.ce = gluon.loss.SoftmaxCrossEntropyLoss()
            if self._class_weights is not None:
                self.weights = self.params.get_constant('class_weights', [self._class_weights])

    def hybrid_forward(self, F, logits, labels, weights=None):  # pylint: disable=arguments-differ
        """logits (batch, num_classes), labels (batch,) -> loss (batch,)."""
        loss = self.ce(logits, labels)
        if weights is None:
            return loss
        return loss * F.take(F.reshape(weights, (-1,)), labels)


def balanced_class_weights(labels, num_classes):
    """n / (num_classes * count_c) for each class c: rare classes weigh more."""
    counts = [0] * num_classes
    for label in labels:
        counts[int(label)] += 1
    if 0 in counts:
        raise ValueError('class {} never occurs in the labels; cannot balance it'.format(
            counts.index(0)))
    return [len(labels) / (num_classes * c) for c in counts]
