"""The training loop: a HybridBlock over a list of contexts with AdamW, warmup/decay, clipping,
gradient accumulation, periodic evaluation, early stopping, checkpoints and exact resume."""
import base64
import contextlib
import dataclasses
import json
import logging
import math
import os
import pickle
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import HybridBlock
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .averaging import AVERAGE_FILE, WeightAverage, check_ema_decay
from ..errors import RunFailedError
from ..files import write_text
from .checkpoint import (MODEL_RECORD, CheckpointManager, describe_model,
                         save_best)
from .clipping import clip_factor, global_norm
from .curves import save_curves
from .metrics_log import MetricsLog
from .distributed import Backend, LocalBackend, allreduce_numpy
from .loop_state import LoopState
from .mixed_precision import DynamicLossScale, LowPrecisionForward, check_mixed_precision
from .optimizer import exclude_from_weight_decay
from .schedule import LinearWarmupDecay

LOG = logging.getLogger('gluonbert.train')
# float16: 2^24 down to 1 is 24 halvings; more overflows in a row than that cannot be scaled away
MAX_SKIPS_IN_A_ROW = 32


class NonFiniteLossError(RunFailedError):
    """The training loss, the weights or an evaluation's outputs became NaN or infinite; the
    message names the last good checkpoint (if one is known)."""


class NonFiniteOutputError(NonFiniteLossError):
    """An evaluation's model outputs are NaN or infinite: its metrics would be meaningless."""


def check_finite_outputs(outputs: np.ndarray, what: str = 'the model outputs') -> None:
    """Raise NonFiniteOutputError when a numpy array of outputs holds NaN or infinity."""
    if not np.isfinite(outputs).all():
        bad = int(outputs.size - np.isfinite(outputs).sum())
        raise NonFiniteOutputError(f'{what} hold {bad} NaN or infinite values of {outputs.size}')


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
    keep_checkpoints: int = 1
    # exponential moving average of the weights (averaging.py), e.g. 0.999: evaluation, the best
    # model and the weights fit() leaves in the net are the average; the trained weights' dev
    # metrics are logged beside it as raw_<metric>. None: no average
    ema_decay: float = None
    progress: bool = True
    # mixed precision (mixed_precision.py): 'float32', 'float16' (GPUs; dynamic loss scaling)
    # or 'bfloat16' (AVX-512 CPUs); lp16_ops: the ops computed in it (None: AMP's default list)
    dtype: str = 'float32'
    lp16_ops: tuple = None
    init_loss_scale: float = 2.0 ** 16
    loss_scale_window: int = 2000  # finite float16 steps in a row before the scale doubles

    def __post_init__(self):
        if self.accumulate < 1:
            raise ValueError(f'accumulate={self.accumulate} must be >= 1')
        if self.mode not in ('max', 'min'):
            raise ValueError(f"mode={self.mode!r} must be 'max' or 'min'")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f'warmup_ratio={self.warmup_ratio} must be in [0, 1]')
        if self.ema_decay is not None:
            check_ema_decay(self.ema_decay)


class TrainingLoop:
    """Train `net` with `compute_loss(net, *batch_shard) -> per-sample losses (n,)`.

    `ctx` is a context or a list (`[mx.gpu(0), mx.gpu(1)]`, `[mx.cpu()]`); each batch is split
    across them. With `output_dir`, it logs to `train.log`, writes checkpoints, `best.params`,
    `history.json` and `curves.png` there.

    `backend` (`distributed.get_backend(name)`, default one process: `LocalBackend()`) reduces
    gradients and makes the updates. With several workers every worker runs this loop on its
    own shard of the batches (the same number of batches each); losses are normalized by the
    global sample count of the step, logged losses are reduced over workers, `evaluate` runs on
    every worker the backend lets evaluate (it may reduce across them; it must return the same
    metrics everywhere; dist_async: rank 0 only), and only rank 0 writes files.
    """

    def __init__(self, net: HybridBlock, compute_loss: Callable[..., mx.nd.NDArray],
                 ctx: mx.Context | list[mx.Context], config: TrainConfig | None = None,
                 output_dir: str | None = None, model_record: dict[str, Any] | None = None,
                 backend: Backend | None = None) -> None:
        """model_record: what else checkpoints record about the model (e.g. labels=[...]),
        beside describe_model(net); a resume into a net described otherwise is refused."""
        self.net, self.compute_loss = net, compute_loss
        self.model_record = describe_model(net, **(model_record or {}))
        self.ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
        self.config = config or TrainConfig()
        self.backend = backend if backend is not None else LocalBackend()
        self.backend.check_contexts(self.ctx)
        self.backend.check_loop_config(self.config)
        cfg = self.config
        check_mixed_precision(cfg.dtype, self.ctx, cfg.lp16_ops)
        # the training forward; evaluation, checkpoints and export use the float32 net
        self.forward = net if cfg.dtype == 'float32' else \
            LowPrecisionForward(net, cfg.dtype, cfg.lp16_ops)
        self.loss_scale = DynamicLossScale(self.ctx[0], cfg.init_loss_scale,
                                           cfg.loss_scale_window) \
            if cfg.dtype == 'float16' else None
        self.output_dir = output_dir
        self.params = [p for p in net.collect_params().values() if p.grad_req != 'null']
        if not self.params:
            raise ValueError('the network has no trainable parameters (grad_req is "null" '
                             'everywhere): was it built with get_model(..., for_training=False)'
                             ' or import_model(..., for_training=False)?')
        exclude_from_weight_decay(net)
        self.trainer = None
        self.state = LoopState()  # the current fit()'s
        self.average = None  # the WeightAverage, made at the first update (shapes known then)
        writes = output_dir and self.backend.is_root and self.backend.can_checkpoint
        self.checkpoints = CheckpointManager(output_dir, self.config.keep_checkpoints) \
            if writes else None
        self.metrics_log = MetricsLog(output_dir if output_dir and self.backend.is_root
                                      else None)
        self.schedule = None  # the LinearWarmupDecay of the current fit()

    def _make_trainer(self, total_steps):
        cfg = self.config
        total_steps *= self.backend.updates_per_step
        self.schedule = LinearWarmupDecay(cfg.lr, total_steps,
                                          int(cfg.warmup_ratio * total_steps))
        optimizer = mx.optimizer.create('adamw', learning_rate=cfg.lr, wd=cfg.weight_decay,
                                        lr_scheduler=self.schedule,
                                        correct_bias=cfg.correct_bias)
        return self.backend.make_trainer(self.net.collect_params(), optimizer)

    def fit(self, train_data: Callable[[int], Iterable[tuple]], batches_per_epoch: int,
            evaluate: Callable[[HybridBlock], dict[str, float]] | None = None,
            resume: bool = False, max_steps: int | None = None) -> dict[str, Any]:
        """Run the epochs. `train_data(epoch)` yields batches (tuples of arrays, batch-major);
        `evaluate(net)` returns a dict of dev metrics. Returns the run summary: the dict of
        LoopState.to_dict() (step, best, best_metrics, history, stopped...)."""
        cfg = self.config
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.accumulate)
        total_steps = steps_per_epoch * cfg.epochs
        self.trainer = self._make_trainer(total_steps)
        self.average = None
        state = self.state = LoopState(total_steps=total_steps)
        for param in self.params:  # accumulation sums micro-batch gradients until the step
            param.grad_req = 'add' if cfg.accumulate > 1 else 'write'
        handler = self._attach_log_file()
        try:
            if self.backend.num_workers > 1:
                LOG.info('%s; %d batches per worker per epoch', self.backend.describe(),
                         batches_per_epoch)
            if resume:
                state = self.state = self._resume(state)
                self._continue_schedule(state, total_steps)
            # on a terminal, log lines are printed above the bar instead of onto it
            redirect = logging_redirect_tqdm() if cfg.progress and self.backend.is_root \
                else contextlib.nullcontext()
            with redirect:
                self._run(train_data, batches_per_epoch, evaluate, max_steps, state)
            return state.to_dict()
        finally:
            if handler is not None:
                LOG.removeHandler(handler)
                handler.close()
            self.backend.release(self.net.collect_params().values())

    def _resume(self, state):
        """Load the latest checkpoint of output_dir (every worker reads rank 0's files)."""
        self.backend.check_resume()
        manager = self.checkpoints or (CheckpointManager(self.output_dir)
                                       if self.output_dir else None)
        path = manager.latest() if manager else None
        if path:
            saved = manager.load(path, self.net, self.trainer, self.ctx, self.model_record)
            state = LoopState.from_dict(saved)
            if self.config.ema_decay and not self._make_average().load(path):
                LOG.warning('%s has no weight average: it starts again from its weights', path)
            elif not self.config.ema_decay and os.path.isfile(os.path.join(path, AVERAGE_FILE)):
                LOG.warning('%s has a weight average, dropped: this run has no ema_decay', path)
            _set_host_rng(saved['host_rng'])
            saved_scale = saved.get('loss_scale')  # the run may change precision
            if self.loss_scale is not None and saved_scale is not None:
                self.loss_scale.load_state_dict(saved_scale)
            LOG.info('resumed from %s (step %d)', path, state.step)
            self.metrics_log.keep_until(state.step)
        else:
            LOG.warning('resume asked, but %s holds no complete checkpoint: training starts at '
                        'step 0', manager.root if manager else 'the run (no output_dir)')
        if self.backend.num_workers > 1:  # all workers must continue from the same step
            step = float(state.step)
            total, squares = allreduce_numpy(self.backend, np.array([step, step * step]))
            if self.backend.num_workers * squares != total * total:
                raise RuntimeError('the workers found different checkpoints to resume from '
                                   f'(this one: step {state.step}); put --output-dir on a '
                                   'filesystem all workers share')
        return state

    def _continue_schedule(self, state, total_steps):
        """After a resume: the optimizer states bring back the saved run's lr schedule (its
        total steps); put this run's schedule back in, so a longer --epochs keeps training
        (the saved one would give lr 0 past its end) and say how the schedule changed."""
        self.trainer._optimizer.lr_scheduler = self.schedule
        saved_total, state.total_steps = state.total_steps, total_steps
        if saved_total is not None and saved_total != total_steps and state.step:
            LOG.info('the schedule now has %d steps (the checkpoint\'s run had %d): linear decay '
                     'to 0 at step %d; the lr at step %d is %.3e', total_steps, saved_total,
                     total_steps, state.step + 1, self.schedule(state.step + 1))
        if state.step >= total_steps:
            LOG.info('the checkpoint is at step %d of %d: nothing left to train (pass a larger '
                     '--epochs to train longer)', state.step, total_steps)

    def _run(self, train_data, batches_per_epoch, evaluate, max_steps, state):
        cfg = self.config
        state.finite_loss_step = state.step
        loss_sum, loss_steps, samples, clock = None, 0, 0, time.time()
        for epoch in range(state.epoch, cfg.epochs):
            skip, group = state.batch, []
            bar = tqdm(total=batches_per_epoch, initial=skip, desc=f'epoch {epoch + 1}',
                       disable=not (cfg.progress and self.backend.is_root), unit='batch',
                       dynamic_ncols=True)
            for index, batch in enumerate(train_data(epoch)):
                if index < skip:
                    continue  # consumed before the checkpoint we resumed from
                group.append(batch)
                last = index + 1 == batches_per_epoch
                if len(group) < cfg.accumulate and not last:
                    continue
                step_loss, step_samples = self._step(group, state.step)
                samples = samples + step_samples
                bar.update(len(group))
                group = []
                state.step += 1
                state.batch = index + 1
                loss_sum = step_loss if loss_sum is None else loss_sum + step_loss
                loss_steps += 1
                if state.step % cfg.log_every == 0 or last:
                    loss = self._read_loss(loss_sum, loss_steps, state)
                    rate = _as_float(samples) / max(time.time() - clock, 1e-9)
                    lr = self.backend.learning_rate(self.trainer, state.step)
                    bar.set_postfix(loss=f'{loss:.4f}', lr=f'{lr:.2e}',
                                    samples_per_s=f'{rate:.1f}')
                    state.history.append(dict(step=state.step, loss=loss, lr=lr))
                    self.metrics_log.append(state.step, 'train', dict(loss=loss, lr=lr))
                    LOG.info('step %d epoch %d loss %.4f lr %.3e %.1f samples/s%s',
                             state.step, epoch + 1, loss, lr, rate, self._read_loss_scale())
                    loss_sum, loss_steps, samples, clock = None, 0, 0, time.time()
                due = cfg.eval_every and state.step % cfg.eval_every == 0
                if due or last:
                    if last:
                        state.epoch, state.batch = epoch + 1, 0
                    self._evaluate_and_checkpoint(evaluate, state)
                if state.stopped or (max_steps and state.step >= max_steps):
                    break
            bar.close()
            if state.stopped or (max_steps and state.step >= max_steps):
                break
        self._finish(state)

    def _step(self, group, step):
        """Forward/backward over the micro-batches of one optimizer step -> (this worker's share
        of the mean loss, NDArray (1,), not synced; the step's sample count over all workers,
        an int or an NDArray (1,))."""
        mx.random.seed(self.config.seed * 1000003 + step)  # dropout masks depend on the step only
        num_samples = sum(len(batch[0]) for batch in group)
        scales = self._loss_scales(num_samples)
        total = None
        loss_scale = self.loss_scale.scale if self.loss_scale is not None else None
        for batch in group:
            shards, weights = self._shards(batch)
            with autograd.record():
                losses = [self.compute_loss(self.forward, *shard).sum() * (weight * scales[ctx])
                          for shard, weight, ctx in zip(shards, weights, self.ctx)]
                scaled = losses if loss_scale is None else \
                    [loss * loss_scale.as_in_context(ctx) for loss, ctx in zip(losses, self.ctx)]
            autograd.backward(scaled)
            for loss in losses:
                loss = loss.as_in_context(self.ctx[0])
                total = loss if total is None else total + loss
        # made at the first update, from the weights before it
        average = self._make_average() if self.config.ema_decay else None
        self.backend.step(self.trainer, lambda: self._gradient_factor(loss_scale))
        if average is not None:
            average.update(step + 1)
        if self.config.accumulate > 1:
            for param in self.params:
                param.zero_grad()
        return total.reshape((1,)), scales['samples']

    def _gradient_factor(self, loss_scale):
        """The factor of the reduced gradients, NDArray (1,): the clipping factor of their
        global norm, unscaled (float16); an overflow makes it NaN, so the step is skipped."""
        norm = global_norm([p.grad(self.ctx[0]) for p in self.params])
        if loss_scale is None:
            return clip_factor(norm, self.config.max_grad_norm)
        factor = clip_factor(norm / loss_scale, self.config.max_grad_norm) / loss_scale
        self.loss_scale.update(mx.nd.contrib.isfinite(norm))
        return factor

    def _make_average(self):
        """The run's WeightAverage, made from the current weights on first use."""
        if self.average is None:
            self.average = WeightAverage(self.net, self.config.ema_decay)
        return self.average

    def _loss_scales(self, num_samples):
        """Per-context factor 1 / (the backend's sample count of the step: over all workers when
        they sum their gradients) for the summed losses, and the step's global sample count."""
        count, samples = self.backend.step_samples(num_samples, self.ctx[0])
        inverse = 1.0 / count
        scales = {ctx: inverse.as_in_context(ctx) if isinstance(inverse, mx.nd.NDArray)
                  else inverse for ctx in self.ctx}
        scales['samples'] = samples
        return scales

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
        loss_sum = self.backend.reduce_loss(loss_sum)  # the shares of the global mean loss
        loss = float(loss_sum.asscalar()) / steps
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f'training loss became {loss} by step {state.step}; the weights were not '
                f'updated from that batch; {self._good_checkpoint_advice()}')
        state.finite_loss_step = state.step
        return loss

    def _good_checkpoint_advice(self):
        """Which checkpoint is good (finite weights, a finite loss after it) and what to do."""
        latest = self.checkpoints.latest() if self.checkpoints else None
        if latest is None:
            return 'there is no earlier checkpoint. Lower --lr or check the data and start again'
        step = int(os.path.basename(latest).split('-')[-1])
        if step < self.state.finite_loss_step:
            return (f'the last good checkpoint is {latest}. Lower --lr or check the data, and '
                    'resume from it with --resume')
        return (f'no checkpoint is known to be good: {latest} was written after the last finite '
                f'loss (step {self.state.finite_loss_step}) and may hold the diverged weights. '
                'Lower --lr or check the data and start again in a new --output-dir')

    def _read_loss_scale(self):
        """float16: ', loss scale S, K steps skipped' for the log line (read with the loss);
        stops the run when the gradients overflow step after step even at the smallest scale."""
        if self.loss_scale is None:
            return ''
        scale = self.loss_scale.state_dict()
        if scale['skipped_in_a_row'] >= MAX_SKIPS_IN_A_ROW:
            raise NonFiniteLossError(
                'float16 gradients were not finite in the last {} steps in a row (loss scale now '
                '{:g}): nothing was learned from them. Train in float32 or bfloat16, or lower '
                '--lr'.format(scale['skipped_in_a_row'], scale['scale']))
        return ', loss scale {:g}, {} steps skipped'.format(scale['scale'], scale['skipped'])

    def _evaluate_and_checkpoint(self, evaluate, state):
        self._check_finite_weights(state)
        if evaluate is not None and self.backend.evaluates_here:
            try:
                raw = dict(evaluate(self.net)) if self.average is not None else {}
                with self._averaged_weights():
                    metrics = dict(evaluate(self.net))
                    metrics.update(('raw_' + name, value) for name, value in raw.items())
                    self._keep_if_best(metrics, state)
            except NonFiniteOutputError as err:
                raise NonFiniteOutputError(
                    f'evaluation at step {state.step}: {err}; it is not kept as best and no '
                    f'checkpoint was written for it; {self._good_checkpoint_advice()}') from None
        if self.checkpoints:
            self.trainer._optimizer.grad_scale = None  # a per-step NDArray, not state
            extra = {'host_rng': _get_host_rng(), MODEL_RECORD: self.model_record}
            if self.loss_scale is not None:
                extra['loss_scale'] = self.loss_scale.state_dict()
            self.checkpoints.save(state.step, self.net, self.trainer,
                                  dict(state.to_dict(), **extra), average=self.average)

    def _check_finite_weights(self, state):
        """Stop before evaluating or checkpointing weights that hold NaN or infinity."""
        # x * 0 is 0 for finite x and NaN for NaN or infinity: no overflow of large weights
        zero = mx.nd.add_n(*[mx.nd.sum(p.data(self.ctx[0]) * 0) for p in self.params])
        if not math.isfinite(float(zero.asscalar())):
            raise NonFiniteLossError(
                f'the weights hold NaN or infinite values at step {state.step}; no checkpoint '
                f'was written for them; {self._good_checkpoint_advice()}')

    def _averaged_weights(self):
        """The net computes with the weight average inside this block (when there is one)."""
        return self.average.applied() if self.average is not None else contextlib.nullcontext()

    def _keep_if_best(self, metrics, state):
        """Log the metrics, record them, save best.params when the monitored one improved and
        count evaluations without improvement for early stopping."""
        cfg = self.config
        monitor = cfg.monitor or next(iter(metrics))
        value = metrics[monitor]
        better = math.isfinite(value) and (
            state.best is None or (value > state.best if cfg.mode == 'max'
                                      else value < state.best))
        state.history.append(dict(step=state.step, eval=metrics))
        self.metrics_log.append(state.step, 'dev', metrics)
        LOG.info('eval at step %d: %s', state.step,
                 ', '.join(f'{k} {v:.4f}' for k, v in metrics.items()))
        if better:
            state.best, state.best_metrics, state.bad_evals = value, metrics, 0
            if self.output_dir and self.backend.is_root:
                save_best(self.output_dir, self.net, dict(step=state.step, **metrics))
        else:
            state.bad_evals += 1
            if cfg.early_stop and state.bad_evals >= cfg.early_stop:
                state.stopped = (f'early stop: {state.bad_evals} evaluations without a better '
                                 f'{monitor}')
                LOG.info(state.stopped)

    def _attach_log_file(self):
        """Log this run to <output_dir>/train.log; returns the handler (removed after fit).
        Workers other than rank 0 log warnings only."""
        LOG.setLevel(logging.INFO if self.backend.is_root else logging.WARNING)
        if not self.output_dir or not self.backend.is_root:
            return None
        os.makedirs(self.output_dir, exist_ok=True)
        handler = logging.FileHandler(os.path.join(self.output_dir, 'train.log'))
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        LOG.addHandler(handler)
        return handler

    def _finish(self, state):
        if self.average is not None:
            self.average.copy_to_net()
        if not self.output_dir or not self.backend.is_root:
            return
        write_text(os.path.join(self.output_dir, 'history.json'),
                          json.dumps(state.history, indent=1))
        save_curves(state.history, os.path.join(self.output_dir, 'curves.png'))


def _as_float(value):
    """An int/float or an NDArray (1,) -> float (the NDArray is read: a host sync)."""
    return float(value.asscalar()) if isinstance(value, mx.nd.NDArray) else float(value)


def _get_host_rng():
    """Python and NumPy global RNG states, JSON-safe."""
    blob = pickle.dumps((random.getstate(), np.random.get_state()))
    return base64.b64encode(blob).decode('ascii')


def _set_host_rng(encoded):
    python_state, numpy_state = pickle.loads(base64.b64decode(encoded))
    random.setstate(python_state)
    np.random.set_state(numpy_state)
