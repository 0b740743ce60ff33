"""An exponential moving average of the trainable weights (Polyak averaging).

The TrainingLoop updates it after every optimizer step, on the device and without a host sync,
evaluates and keeps the best model with the averaged weights in place, and saves it in every
checkpoint so a resumed run averages exactly as an uninterrupted one.
"""
import contextlib
import os
from collections.abc import Iterator

import mxnet as mx
from mxnet.gluon import HybridBlock

AVERAGE_FILE = 'average.params'


def check_ema_decay(decay: float) -> None:
    """Raise ValueError unless 0 < decay < 1."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f'ema_decay={decay} must be in (0, 1), e.g. 0.999')


class WeightAverage:
    """shadow <- d * shadow + (1 - d) * weight after update t, d = min(decay, (1 + t) / (10 + t)).

    The warm-up of d (TensorFlow's ExponentialMovingAverage with num_updates) keeps the average
    from being dominated by the pretrained starting point early in a run. `net`'s trainable
    parameters are averaged on their first context (the weights are equal on all of them).
    """

    def __init__(self, net: HybridBlock, decay: float) -> None:
        check_ema_decay(decay)
        self.decay = decay
        named = net._collect_params_with_prefix()
        self.params = {name: p for name, p in named.items() if p.grad_req != 'null'}
        self.shadow = {name: p.list_data()[0].copy() for name, p in self.params.items()}

    def rate(self, num_update: int) -> float:
        """The decay d applied after update `num_update` (1 for the first update)."""
        return min(self.decay, (1.0 + num_update) / (10.0 + num_update))

    def update(self, num_update: int) -> None:
        """Blend the current weights into the average (call after the optimizer update)."""
        d = self.rate(num_update)
        for name, param in self.params.items():
            shadow = self.shadow[name]
            shadow *= d
            shadow += param.list_data()[0] * (1.0 - d)

    def _write(self, source):
        for name, param in self.params.items():
            for arr in param.list_data():  # not set_data: that would reset a dist_async kvstore
                source[name].copyto(arr)

    @contextlib.contextmanager
    def applied(self) -> Iterator["WeightAverage"]:
        """Within the block the net computes with the averaged weights; afterwards the trained
        weights are back, unchanged."""
        trained = {name: p.list_data()[0].copy() for name, p in self.params.items()}
        self._write(self.shadow)
        try:
            yield self
        finally:
            self._write(trained)

    def copy_to_net(self) -> None:
        """Replace the net's weights by the averaged ones for good."""
        self._write(self.shadow)

    def save(self, folder: str) -> None:
        """Write the average into a checkpoint folder."""
        mx.nd.save(os.path.join(folder, AVERAGE_FILE), self.shadow)

    def load(self, folder: str) -> bool:
        """Restore the average of a checkpoint folder -> True; False when it has none (the
        average stays what it was made from: the weights at construction)."""
        path = os.path.join(folder, AVERAGE_FILE)
        if not os.path.isfile(path):
            return False
        try:
            saved = mx.nd.load(path)
        except mx.base.MXNetError as err:
            raise ValueError(f'cannot resume from {folder}: {AVERAGE_FILE} is damaged '
                             f'({str(err).strip().splitlines()[0]})') from err
        if set(saved) != set(self.shadow):
            raise ValueError(f'cannot resume from {folder}: its weight average has parameters '
                             f'{sorted(set(saved) - set(self.shadow))[:3]} '
                             'that this model has not, and misses '
                             f'{sorted(set(self.shadow) - set(saved))[:3]}')
        for name, shadow in self.shadow.items():
            if saved[name].shape != shadow.shape:
                raise ValueError(f'cannot resume from {folder}: the weight average of {name} has '
                                 f'shape {saved[name].shape}, '
                                 f'the model {shadow.shape}')
            saved[name].copyto(shadow)
        return True
