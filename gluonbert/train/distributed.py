"""Communication backends for multi-worker training: one process ('device'), MXNet's
parameter-server kvstores (dist_sync, dist_sync_device, dist_async) and Horovod.

A backend knows this worker's rank and the number of workers, builds the gluon.Trainer that
sums gradients across workers (with rank 0's initial parameters broadcast to all), and
all-reduces small NDArrays (sample counts, losses, dev-set outputs) so every worker computes
the same metrics. Worker processes are started by
`scripts/launch.py` (`gluonbert launch`), which sets the DMLC_* / HOROVOD_* environment.

What differs between backends is here, so the TrainingLoop reads as one path (it calls the
methods of `Backend`, whatever the backend):
- synchronous backends (device, dist_sync*, horovod): gradients are *summed* over workers, the
  loop divides each loss by the global number of samples of the step, then clips the summed
  gradient's global norm and updates locally (update_on_kvstore=False): every worker applies
  the same update to the same weights.
- dist_async (`AsyncKVStoreBackend`): MXNet only supports it with the optimizer on the servers
  (update_on_kvstore=True), where each worker's push is one update of its own batch; the loop
  cannot clip or skip non-finite steps there, and all-reduce is impossible (pushes are not
  rounds): no early stopping, no resume, only rank 0 evaluates.
"""
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import mxnet as mx
import numpy as np
from mxnet import gluon

from .. import kernels

if TYPE_CHECKING:
    from .loop import TrainConfig

LOG = logging.getLogger('gluonbert.train')

BACKENDS = ('device', 'dist_sync', 'dist_sync_device', 'dist_async', 'horovod')
KVSTORE_BACKENDS = ('dist_sync', 'dist_sync_device', 'dist_async')
HOROVOD_INSTALL = ("pip install wheel && HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 "
                   "HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 "
                   "pip install --no-build-isolation 'horovod==0.28.1'")
_KEY_BASE = 1 << 24  # kvstore keys for all-reduce; the Trainer uses 0..num_params-1

_ACTIVE = None  # the one distributed backend of this process (a kvstore/Horovod is per process)


class Backend:
    """What the TrainingLoop asks of a backend; these defaults are the synchronous behaviour
    (every worker makes the same local update from the gradients summed over all workers).

    Subclasses set `name`, `rank`, `num_workers`, `is_root` and implement `make_trainer`,
    `check_contexts`, `allreduce` and `describe`.
    """
    synchronous = True  # workers run in rounds: allreduce works, all agree on every decision
    updates_on_kvstore = False  # the optimizer runs on parameter servers, not in the loop
    # the optimizer states live in this process: checkpoints hold them and a run can resume
    can_checkpoint = True
    evaluates_here = True  # this worker runs the loop's evaluations (all of them agree)

    @property
    def shares_evaluation(self) -> bool:
        """Whether each worker predicts a share of an evaluation set and the outputs are
        all-reduced (synchronous workers, several of them)."""
        return self.synchronous and self.num_workers > 1

    @property
    def updates_per_step(self) -> int:
        """Optimizer updates one loop step makes on the shared lr schedule."""
        return 1

    def check_loop_config(self, config: 'TrainConfig') -> None:
        """Refuse TrainConfig settings this backend cannot honour (none here)."""

    def check_resume(self) -> None:
        """Refuse to resume when the optimizer states are not in this process (they are here)."""

    def step_samples(self, num_samples: int, ctx: mx.Context
                     ) -> tuple[int | mx.nd.NDArray, int | mx.nd.NDArray]:
        """This worker's sample count of a step -> (what each summed loss is divided by, the
        step's sample count over all workers); each an int or an NDArray (1,) on `ctx`.

        Synchronous workers sum their gradients, so each divides by the global count
        (all-reduced without a host sync: uneven last batches stay exact)."""
        if self.num_workers == 1:
            return num_samples, num_samples
        count = self.allreduce(mx.nd.array([num_samples], ctx=ctx))
        return count, count

    def step(self, trainer: gluon.Trainer, gradient_factor: Callable[[], mx.nd.NDArray]
             ) -> None:
        """Reduce the gradients over contexts and workers, then update the weights locally.

        gradient_factor() -> NDArray (1,) multiplied into the reduced gradients (clipping, loss
        scaling; NaN or 0 skips the update), called once the gradients are reduced."""
        trainer.allreduce_grads()
        trainer._optimizer.grad_scale = gradient_factor()
        trainer.update(1)

    def reduce_loss(self, loss_sum: mx.nd.NDArray) -> mx.nd.NDArray:
        """A worker's share of the logged mean loss, NDArray (1,) -> the global one."""
        return loss_sum if self.num_workers == 1 else self.allreduce(loss_sum)

    def learning_rate(self, trainer: gluon.Trainer, step: int) -> float:
        """The learning rate of the latest update (loop step `step`)."""
        return trainer.learning_rate

    def release(self, params: gluon.ParameterDict) -> None:
        """After fit: give the weights back to the caller (nothing to do here)."""


class LocalBackend(Backend):
    """One worker process: gradients are reduced across its contexts only."""
    rank, num_workers, is_root = 0, 1, True

    def __init__(self, kvstore: str = 'device') -> None:
        self.name = kvstore

    def make_trainer(self, params: gluon.ParameterDict, optimizer: mx.optimizer.Optimizer
                     ) -> gluon.Trainer:
        """gluon.Trainer with the single-machine kvstore; the loop updates locally."""
        return gluon.Trainer(params, optimizer, kvstore=self.name, update_on_kvstore=False)

    def check_contexts(self, ctx: list[mx.Context]) -> None:
        """Any number of contexts works in one process."""

    def allreduce(self, array: mx.nd.NDArray) -> mx.nd.NDArray:
        """The sum over workers of `array`: with one worker, `array` itself."""
        return array

    def describe(self) -> str:
        """One line for the log."""
        return f'1 worker ({self.name})'


class KVStoreBackend(Backend):
    """A worker of MXNet's synchronous parameter-server kvstore (dist_sync, dist_sync_device;
    the scheduler and servers run elsewhere)."""
    names = ('dist_sync', 'dist_sync_device')

    def __init__(self, name: str) -> None:
        if name not in self.names:
            raise ValueError(f"{name!r} is not a backend of {type(self).__name__}; use one of "
                             f"{', '.join(self.names)}")
        missing = [v for v in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT',
                               'DMLC_NUM_WORKER', 'DMLC_NUM_SERVER') if v not in os.environ]
        if missing:
            raise RuntimeError(
                '--comm-backend {} needs a parameter-server cluster, but {} not set: start the '
                'workers with `python scripts/launch.py --backend {} -n 2 -- python ...`'.format(
                    name, ', '.join(missing) + (' is' if len(missing) == 1 else ' are'), name))
        if os.environ.get('DMLC_ROLE') != 'worker':
            raise RuntimeError('DMLC_ROLE={} but this process trains: it must be a worker'
                               .format(os.environ['DMLC_ROLE']))
        if 'PORT' in os.environ:  # ps-lite reads PORT as its own listening port and fails
            LOG.warning('unsetting PORT=%s: the parameter server would read it as its own port',
                        os.environ.pop('PORT'))
        self.name = name
        self.kv = mx.kv.create(name)
        self.rank, self.num_workers = self.kv.rank, self.kv.num_workers
        self.is_root = self.rank == 0
        self._buffers = {}  # shape -> (kvstore key, the array every push/pull of it uses)
        self._next_key = itertools.count(_KEY_BASE)

    def make_trainer(self, params: gluon.ParameterDict, optimizer: mx.optimizer.Optimizer
                     ) -> gluon.Trainer:
        """gluon.Trainer on this kvstore; the initial parameters are broadcast from rank 0 now
        (MXNet would do it only at the first step, after a forward pass on local weights)."""
        trainer = gluon.Trainer(params, optimizer, kvstore=self.kv,
                                update_on_kvstore=self.updates_on_kvstore)
        trainer._init_kvstore()  # MXNet 1.9: creates the kvstore state, sets server optimizer
        trainer._init_params()  # kvstore.broadcast: init from rank 0 (+ barrier), pull all
        return trainer

    def check_contexts(self, ctx: list[mx.Context]) -> None:
        """Several contexts per worker are reduced locally first, then across workers."""

    def allreduce(self, array: mx.nd.NDArray) -> mx.nd.NDArray:
        """Sum of `array` (float32 NDArray) over all workers -> new NDArray, not synced.

        Every worker must call it in the same order with the same shapes (a collective)."""
        if array.shape not in self._buffers:  # a new key: kv.init is a collective too
            key = next(self._next_key)
            self.kv.init(key, mx.nd.zeros(array.shape, dtype='float32'))
            self._buffers[array.shape] = key, mx.nd.zeros(array.shape, dtype='float32')
        key, buffer = self._buffers[array.shape]
        # MXNet orders kvstore operations only through the arrays they read and write. Pushing
        # from and pulling into one buffer per key (as gluon.Trainer does with gradients) keeps
        # the next push behind this pull; fresh arrays would let a later round's push overtake
        # it, and the pull would return that round's sum.
        array.astype('float32', copy=False).copyto(buffer)
        self.kv.push(key, buffer)
        self.kv.pull(key, out=buffer)
        return buffer.copyto(array.context)

    def describe(self) -> str:
        """One line for the log."""
        return f'{self.num_workers} workers ({self.name}, rank {self.rank})'


class AsyncKVStoreBackend(KVStoreBackend):
    """A worker of MXNet's dist_async kvstore: the servers run the optimizer and apply every
    worker's push as its own update, as it arrives."""
    names = ('dist_async',)
    synchronous, updates_on_kvstore, can_checkpoint = False, True, False

    @property
    def evaluates_here(self) -> bool:
        """Workers do not wait for each other, so only rank 0 evaluates."""
        return self.is_root

    @property
    def updates_per_step(self) -> int:
        """Every worker's push is one update on the servers."""
        return self.num_workers

    def check_loop_config(self, config: 'TrainConfig') -> None:
        """The optimizer runs on the servers: no clipping, no collective decisions, no
        mixed precision (it needs the loop's own update)."""
        if config.max_grad_norm is not None:
            raise ValueError(f'{self.name} runs the optimizer on the servers, so the loop cannot '
                             'clip the gradient norm: set max_grad_norm=None (--max-grad-norm 0) '
                             'or use dist_sync')
        if config.early_stop:
            raise ValueError(f'{self.name}: early stopping needs all workers to agree; use '
                             'dist_sync')
        if config.dtype != 'float32':
            raise ValueError(f'{self.name} runs the optimizer on the servers; mixed precision '
                             "needs the loop's own update (unscaling, skipping overflowed steps):"
                             f' train {config.dtype} with dist_sync')

    def check_resume(self) -> None:
        """The optimizer states live on the servers: refuse."""
        raise ValueError(f'{self.name} keeps the optimizer states on the servers: it cannot '
                         'resume')

    def step_samples(self, num_samples: int, ctx: mx.Context) -> tuple[int, int]:
        """Every push is its own update, so each worker divides by its own count; the global
        count is an estimate (workers x this one's)."""
        return num_samples, num_samples * self.num_workers

    def step(self, trainer: gluon.Trainer, gradient_factor: Callable[[], mx.nd.NDArray]
             ) -> None:
        """Push the gradients, the servers update, pull the weights (no clipping: refused by
        check_loop_config, so gradient_factor is not called)."""
        trainer.step(1)

    def reduce_loss(self, loss_sum: mx.nd.NDArray) -> mx.nd.NDArray:
        """No all-reduce: the logged loss is this worker's own."""
        return loss_sum

    def learning_rate(self, trainer: gluon.Trainer, step: int) -> float:
        """The servers count the updates (every worker's push is one); this worker's estimate
        is step x workers."""
        return trainer._optimizer.lr_scheduler(step * self.num_workers)

    def release(self, params: gluon.ParameterDict) -> None:
        """Detach the trainer, so set_data works on the weights again."""
        for param in params:
            param._trainer = None

    def allreduce(self, array: mx.nd.NDArray) -> mx.nd.NDArray:
        """Impossible: asynchronous pushes are not rounds."""
        raise RuntimeError(f'{self.name} cannot all-reduce: asynchronous pushes are not rounds; '
                           'use dist_sync or horovod')


class HorovodBackend(Backend):
    """A Horovod rank (gloo or MPI); one context per rank."""

    def __init__(self):
        if not kernels.disable('Horovod'):
            raise RuntimeError(f'--comm-backend horovod: {kernels.HOROVOD_CLASH}, and gluonbert '
                               f'kernels are already '
                               'loaded here; create the backend before running a model, or set '
                               f'{kernels.ENABLE_ENV}=0')
        try:
            import horovod.mxnet as hvd
        except ImportError as err:
            raise ImportError(f'--comm-backend horovod: horovod is not installed ({err}). Build it '
                              f'against this MXNet with: {HOROVOD_INSTALL}') from err
        self.name, self.hvd = 'horovod', hvd
        hvd.init()
        self.rank, self.num_workers = hvd.rank(), hvd.size()
        self.is_root = self.rank == 0
        self._calls = itertools.count()

    def make_trainer(self, params: gluon.ParameterDict, optimizer: mx.optimizer.Optimizer
                     ) -> gluon.Trainer:
        """hvd.DistributedTrainer after broadcasting rank 0's parameters. Horovod averages the
        gradients over ranks; the loop already divides each loss by the global sample count, so
        the trainer is made to sum instead."""
        self.hvd.broadcast_parameters(params, root_rank=0)
        trainer = self.hvd.DistributedTrainer(params, optimizer)
        if trainer._average_in_framework:  # CPU / older NCCL: sum, then rescale_grad / size
            trainer._scale = optimizer.rescale_grad
        else:  # NCCL >= 2.10 averages in C++: scale its result back up by the size
            trainer._postscale_factor *= self.num_workers
        return trainer

    def check_contexts(self, ctx: list[mx.Context]) -> None:
        """Horovod reduces one gradient per rank: one context per process."""
        if len(ctx) != 1:
            raise ValueError(f'horovod runs one context per rank, got {len(ctx)}: start one rank '
                             f'per '
                             'device instead')

    def allreduce(self, array: mx.nd.NDArray) -> mx.nd.NDArray:
        """Sum of `array` over all ranks -> new NDArray (collective, same order everywhere)."""
        return self.hvd.allreduce(array.astype('float32', copy=False), op=self.hvd.Sum,
                                  name=f'gluonbert.allreduce.{next(self._calls)}')

    def describe(self) -> str:
        """One line for the log."""
        return f'{self.num_workers} workers (horovod, rank {self.rank})'


def get_backend(name: str = 'device') -> Backend:
    """The backend for a `--comm-backend` name (pass it to TrainingLoop(backend=...)).
    Distributed backends are created once per process (joining the cluster); later calls
    return the same one."""
    global _ACTIVE
    if name not in KVSTORE_BACKENDS and name != 'horovod':
        return LocalBackend(name)
    if _ACTIVE is not None:
        if _ACTIVE.name != name:
            raise ValueError(f'this process already joined a {_ACTIVE.name} cluster; it cannot '
                             f'also use {name}')
        return _ACTIVE
    if name == 'horovod':
        _ACTIVE = HorovodBackend()
    else:
        _ACTIVE = (AsyncKVStoreBackend if name in AsyncKVStoreBackend.names
                   else KVStoreBackend)(name)
    return _ACTIVE


def allreduce_numpy(backend: Backend | None, array: np.ndarray) -> np.ndarray:
    """Sum of a numpy array over the workers -> float32 numpy array (a collective)."""
    if backend.num_workers == 1:
        return array
    return backend.allreduce(mx.nd.array(array, dtype='float32')).asnumpy()


def shard_batches(epoch_batches: Callable[[int], Iterator], batches_per_epoch: int, rank: int,
                  num_workers: int) -> tuple[Callable[[int], Iterator], int]:
    """Give each worker every num_workers-th batch of an epoch -> (epoch -> iterator, batches
    per worker per epoch). All workers get the same number of batches: an incomplete last round
    is completed with the epoch's first batches (as FixedBucketSampler's num_shards does)."""
    if num_workers == 1:
        return epoch_batches, batches_per_epoch
    if batches_per_epoch < 1:
        raise ValueError('no batches to shard')
    per_worker = -(-batches_per_epoch // num_workers)

    def worker_batches(epoch):
        first = []  # the epoch's first batches, to complete the last round
        for index, batch in enumerate(itertools.islice(epoch_batches(epoch), batches_per_epoch)):
            if index < num_workers:
                first.append(batch)
            if index % num_workers == rank:
                yield batch
        for index in range(batches_per_epoch, per_worker * num_workers):
            if index % num_workers == rank:
                yield first[(index - batches_per_epoch) % len(first)]
    return worker_batches, per_worker
