"""The training loop: a HybridBlock over a list of contexts with AdamW, warmup/decay, clipping,
gradient accumulation, periodic evaluation, early stopping, checkpoints and exact resume."""
import base64
import dataclasses
import json
import logging
import math
import os
import pickle
import random
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from tqdm.auto import tqdm

from .checkpoint import CheckpointManager, atomic_write_text, save_best
from .clipping import clip_factor, global_norm
from .curves import save_curves
from .optimizer import exclude_from_weight_decay
from .schedule import LinearWarmupDecay

LOG = logging.getLogger('gluonbert.train')


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainConfig:
    """Hyperparameters of a run (BERT fine-tuning defaults)."""
    lr: float = 5e-5
    epochs: int = 3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # None: no clipping (non-finite steps are still skipped)
    accumulate: int = 1  # micro-batches per optimizer step
    correct_bias: bool = True  # False: Google BERT's AdamWeightDecay
    log_every: int = 20  # steps between loss read-outs (the loop's only waits on the device)
    eval_every: int = None  # steps between evaluations; None: at the end of every epoch
    early_stop: int = None  # stop after this many evaluations without improvement
    monitor: str = None  # metric that decides "best"; default: the first one evaluate returns
    mode: str = 'max'  # 'max' or 'min' for the monitored metric
    seed: int = 0
    kvstore: str = 'device'  # passed to gluon.Trainer; dist_* kvstores slot in here
    keep_checkpoints: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.accumulate < 1:
            raise ValueError('accumulate={} must be >= 1'.format(self.accumulate))
        if self.mode not in ('max', 'min'):
            raise ValueError("mode={!r} must be 'max' or 'min'".format(self.mode))
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError('warmup_ratio={} must be in [0, 1]'.format(self.warmup_ratio))


class TrainingLoop:
    """Train `net` with `compute_loss(net, *batch_shard) -> per-sample losses (n,)`.

    `ctx` is a context or a list (`[mx.gpu(0), mx.gpu(1)]`, `[mx.cpu()]`); each batch is split
    across them. With `output_dir`, it logs to `train.log`, writes checkpoints, `best.params`,
    `history.json` and `curves.png` there.
    """

    def __init__(self, net, compute_loss, ctx, config=None, output_dir=None):
        self.net, self.compute_loss = net, compute_loss
        self.ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
        self.config = config or TrainConfig()
        self.output_dir = output_dir
        self.params = [p for p in net.collect_params().values() if p.grad_req != 'null']
        exclude_from_weight_decay(net)
        self.trainer = None
        self.checkpoints = CheckpointManager(output_dir, self.config.keep_checkpoints) \
            if output_dir else None

    def _make_trainer(self, total_steps):
        cfg = self.config
        schedule = LinearWarmupDecay(cfg.lr, total_steps, int(cfg.warmup_ratio * total_steps))
        optimizer = mx.optimizer.create('adamw', learning_rate=cfg.lr, wd=cfg.weight_decay,
                                        lr_scheduler=schedule, correct_bias=cfg.correct_bias)
        return gluon.Trainer(self.net.collect_params(), optimizer, kvstore=cfg.kvstore,
                             update_on_kvstore=False)

    def fit(self, train_data, batches_per_epoch, evaluate=None, resume=False, max_steps=None):
        """Run the epochs. `train_data(epoch)` yields batches (tuples of arrays, batch-major);
        `evaluate(net)` returns a dict of dev metrics. Returns the run summary (a dict)."""
        cfg = self.config
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.accumulate)
        self.trainer = self._make_trainer(steps_per_epoch * cfg.epochs)
        state = dict(epoch=0, batch=0, step=0, best=None, best_metrics=None, bad_evals=0,
                     history=[], stopped=None)
        for param in self.params:  # accumulation sums micro-batch gradients until the step
            param.grad_req = 'add' if cfg.accumulate > 1 else 'write'
        handler = self._attach_log_file()
        try:
            if resume and self.checkpoints and self.checkpoints.latest():
                path = self.checkpoints.latest()
                state = self.checkpoints.load(path, self.net, self.trainer, self.ctx)
                _set_host_rng(state.pop('host_rng'))
                LOG.info('resumed from %s (step %d)', path, state['step'])
            return self._run(train_data, batches_per_epoch, evaluate, max_steps, state)
        finally:
            if handler is not None:
                LOG.removeHandler(handler)
                handler.close()

    def _run(self, train_data, batches_per_epoch, evaluate, max_steps, state):
        cfg = self.config
        loss_sum, loss_steps, samples, clock = None, 0, 0, time.time()
        epochs = range(state['epoch'], cfg.epochs)
        for epoch in epochs:
            skip, group = state['batch'], []
            bar = tqdm(total=batches_per_epoch, initial=skip, desc='epoch {}'.format(epoch + 1),
                       disable=not cfg.progress, unit='batch', dynamic_ncols=True)
            for index, batch in enumerate(train_data(epoch)):
                if index < skip:
                    continue  # consumed before the checkpoint we resumed from
                group.append(batch)
                last = index + 1 == batches_per_epoch
                if len(group) < cfg.accumulate and not last:
                    continue
                step_loss = self._step(group, state['step'])
                samples += sum(len(b[0]) for b in group)
                bar.update(len(group))
                group = []
                state['step'] += 1
                state['batch'] = index + 1
                loss_sum = step_loss if loss_sum is None else loss_sum + step_loss
                loss_steps += 1
                if state['step'] % cfg.log_every == 0 or last:
                    loss = self._read_loss(loss_sum, loss_steps, state)
                    rate = samples / max(time.time() - clock, 1e-9)
                    lr = self.trainer.learning_rate
                    bar.set_postfix(loss='{:.4f}'.format(loss), lr='{:.2e}'.format(lr),
                                    samples_per_s='{:.1f}'.format(rate))
                    state['history'].append(dict(step=state['step'], loss=loss, lr=lr))
                    LOG.info('step %d epoch %d loss %.4f lr %.3e %.1f samples/s',
                             state['step'], epoch + 1, loss, lr, rate)
                    loss_sum, loss_steps, samples, clock = None, 0, 0, time.time()
                due = cfg.eval_every and state['step'] % cfg.eval_every == 0
                if due or last:
                    if last:
                        state['epoch'], state['batch'] = epoch + 1, 0
                    self._evaluate_and_checkpoint(evaluate, state)
                if state['stopped'] or (max_steps and state['step'] >= max_steps):
                    break
            bar.close()
            if state['stopped'] or (max_steps and state['step'] >= max_steps):
                break
        self._finish(state)
        return state

    def _step(self, group, step):
        """Forward/backward over the micro-batches of one optimizer step; returns the mean loss
        (NDArray (1,), not synced)."""
        mx.random.seed(self.config.seed * 1000003 + step)  # dropout masks depend on the step only
        num_samples = sum(len(batch[0]) for batch in group)
        total = None
        for batch in group:
            shards, weights = self._shards(batch)
            with autograd.record():
                losses = [self.compute_loss(self.net, *shard).sum() * (weight / num_samples)
                          for shard, weight in zip(shards, weights)]
            autograd.backward(losses)
            for loss in losses:
                loss = loss.as_in_context(self.ctx[0])
                total = loss if total is None else total + loss
        self.trainer.allreduce_grads()
        norm = global_norm([p.grad(self.ctx[0]) for p in self.params])
        self.trainer._optimizer.grad_scale = clip_factor(norm, self.config.max_grad_norm)
        self.trainer.update(1)
        if self.config.accumulate > 1:
            for param in self.params:
                param.zero_grad()
        return total.reshape((1,))

    def _shards(self, batch):
        """Split a batch across the contexts -> (per-context input tuples, loss weights).

        Every context must run backward each step (gluon.Trainer refuses stale gradients), so
        when a batch has fewer samples than contexts the idle ones get a copy of the first
        sample with loss weight 0: their gradient is zero and nothing is counted twice.
        """
        size, ctxs = len(batch[0]), self.ctx
        busy = ctxs[:size]
        split = [gluon.utils.split_and_load(a, busy, even_split=False) for a in batch]
        shards, weights = list(zip(*split)), [1.0] * len(busy)
        for ctx in ctxs[size:]:
            shards.append(tuple(a[0:1].as_in_context(ctx) if isinstance(a, mx.nd.NDArray)
                                else mx.nd.array(a[0:1], ctx=ctx) for a in batch))
            weights.append(0.0)
        return shards, weights

    def _read_loss(self, loss_sum, steps, state):
        loss = float(loss_sum.asscalar()) / steps
        if not math.isfinite(loss):
            last = self.checkpoints.latest() if self.checkpoints else None
            raise NonFiniteLossError(
                'training loss became {} by step {}; the weights were not updated from that '
                'batch, and the last good checkpoint is {}. Lower --lr, check the data, or '
                'resume from it with --resume'.format(loss, state['step'], last or 'none'))
        return loss

    def _evaluate_and_checkpoint(self, evaluate, state):
        cfg = self.config
        if evaluate is not None:
            metrics = dict(evaluate(self.net))
            monitor = cfg.monitor or next(iter(metrics))
            value = metrics[monitor]
            better = math.isfinite(value) and (
                state['best'] is None or (value > state['best'] if cfg.mode == 'max'
                                          else value < state['best']))
            state['history'].append(dict(step=state['step'], eval=metrics))
            LOG.info('eval at step %d: %s', state['step'],
                     ', '.join('{} {:.4f}'.format(k, v) for k, v in metrics.items()))
            if better:
                state['best'], state['best_metrics'], state['bad_evals'] = value, metrics, 0
                if self.output_dir:
                    save_best(self.output_dir, self.net, dict(step=state['step'], **metrics))
            else:
                state['bad_evals'] += 1
                if cfg.early_stop and state['bad_evals'] >= cfg.early_stop:
                    state['stopped'] = 'early stop: {} evaluations without a better {}'.format(
                        state['bad_evals'], monitor)
                    LOG.info(state['stopped'])
        if self.checkpoints:
            self.trainer._optimizer.grad_scale = None  # a per-step NDArray, not state
            self.checkpoints.save(state['step'], self.net, self.trainer,
                                  dict(state, host_rng=_get_host_rng()))

    def _attach_log_file(self):
        """Log this run to <output_dir>/train.log; returns the handler (removed after fit)."""
        LOG.setLevel(logging.INFO)
        if not self.output_dir:
            return None
        handler = logging.FileHandler(os.path.join(self.output_dir, 'train.log'))
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        LOG.addHandler(handler)
        return handler

    def _finish(self, state):
        if not self.output_dir:
            return
        atomic_write_text(os.path.join(self.output_dir, 'history.json'),
                          json.dumps(state['history'], indent=1))
        save_curves(state['history'], os.path.join(self.output_dir, 'curves.png'))


def _get_host_rng():
    """Python and NumPy global RNG states, JSON-safe."""
    blob = pickle.dumps((random.getstate(), np.random.get_state()))
    return base64.b64encode(blob).decode('ascii')


def _set_host_rng(encoded):
    python_state, numpy_state = pickle.loads(base64.b64decode(encoded))
    random.setstate(python_state)
    np.random.set_state(numpy_state)
