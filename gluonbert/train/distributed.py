"""Communication backends for multi-worker training: one process ('device'), MXNet's
parameter-server kvstores (dist_sync, dist_sync_device, dist_async) and Horovod.

A backend knows this worker's rank and the number of workers, builds the gluon.Trainer that
sums gradients across workers (with rank 0's initial parameters broadcast to all), and
all-reduces small NDArrays (sample counts, losses, dev-set outputs) so every worker computes
the same metrics. Worker processes are started by
`scripts/launch.py` (`gluonbert launch`), which sets the DMLC_* / HOROVOD_* environment.

Rules the TrainingLoop relies on:
- synchronous backends (device, dist_sync*, horovod): gradients are *summed* over workers, the
  loop divides each loss by the global number of samples of the step, then clips the summed
  gradient's global norm and updates locally (update_on_kvstore=False): every worker applies
  the same update to the same weights.
- dist_async: MXNet only supports it with the optimizer on the servers (update_on_kvstore=True),
  where each worker's push is one update of its own batch; the loop cannot clip or skip
  non-finite steps there, and all-reduce is impossible (pushes are not rounds).
"""
import itertools
import logging
import os

import mxnet as mx
from mxnet import gluon

from .. import kernels

LOG = logging.getLogger('gluonbert.train')

BACKENDS = ('device', 'dist_sync', 'dist_sync_device', 'dist_async', 'horovod')
KVSTORE_BACKENDS = ('dist_sync', 'dist_sync_device', 'dist_async')
HOROVOD_INSTALL = ("pip install wheel && HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 "
                   "HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 "
                   "pip install --no-build-isolation 'horovod==0.28.1'")
_KEY_BASE = 1 << 24  # kvstore keys for all-reduce; the Trainer uses 0..num_params-1

_ACTIVE = None  # the one distributed backend of this process (a kvstore/Horovod is per process)


class LocalBackend:
    """One worker process: gradients are reduced across its contexts only."""
    rank, num_workers, is_root, synchronous, updates_on_kvstore = 0, 1, True, True, False

    def __init__(self, kvstore='device'):
        self.name = kvstore

    def make_trainer(self, params, optimizer):
        """gluon.Trainer with the single-machine kvstore; the loop updates locally."""
        return gluon.Trainer(params, optimizer, kvstore=self.name, update_on_kvstore=False)

    def check_contexts(self, ctx):
        """Any number of contexts works in one process."""

    def allreduce(self, array):
        """The sum over workers of `array`: with one worker, `array` itself."""
        return array

    def describe(self):
        """One line for the log."""
        return f'1 worker ({self.name})'


class KVStoreBackend:
    """A worker of MXNet's parameter-server kvstore (scheduler and servers run elsewhere)."""

    def __init__(self, name):
        if name not in KVSTORE_BACKENDS:
            raise ValueError('{!r} is not a distributed kvstore; use one of {}'.format(
                name, ', '.join(KVSTORE_BACKENDS)))
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
        self.synchronous = 'async' not in name
        self.updates_on_kvstore = not self.synchronous
        self._buffers = {}  # shape -> (kvstore key, the array every push/pull of it uses)
        self._next_key = itertools.count(_KEY_BASE)

    def make_trainer(self, params, optimizer):
        """gluon.Trainer on this kvstore; the initial parameters are broadcast from rank 0 now
        (MXNet would do it only at the first step, after a forward pass on local weights)."""
        trainer = gluon.Trainer(params, optimizer, kvstore=self.kv,
                                update_on_kvstore=self.updates_on_kvstore)
        trainer._init_kvstore()  # MXNet 1.9: creates the kvstore state, sets server optimizer
        trainer._init_params()  # kvstore.broadcast: init from rank 0 (+ barrier), pull all
        return trainer

    def check_contexts(self, ctx):
        """Several contexts per worker are reduced locally first, then across workers."""

    def allreduce(self, array):
        """Sum of `array` (float32 NDArray) over all workers -> new NDArray, not synced.

        Every worker must call it in the same order with the same shapes (a collective)."""
        if not self.synchronous:
            raise RuntimeError(f'{self.name} cannot all-reduce: asynchronous pushes are not '
                               f'rounds; '
                               'use dist_sync or horovod')
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

    def describe(self):
        """One line for the log."""
        return f'{self.num_workers} workers ({self.name}, rank {self.rank})'


class HorovodBackend:
    """A Horovod rank (gloo or MPI); one context per rank."""
    synchronous, updates_on_kvstore = True, False

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

    def make_trainer(self, params, optimizer):
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

    def check_contexts(self, ctx):
        """Horovod reduces one gradient per rank: one context per process."""
        if len(ctx) != 1:
            raise ValueError(f'horovod runs one context per rank, got {len(ctx)}: start one rank '
                             f'per '
                             'device instead')

    def allreduce(self, array):
        """Sum of `array` over all ranks -> new NDArray (collective, same order everywhere)."""
        return self.hvd.allreduce(array.astype('float32', copy=False), op=self.hvd.Sum,
                                  name=f'gluonbert.allreduce.{next(self._calls)}')

    def describe(self):
        """One line for the log."""
        return f'{self.num_workers} workers (horovod, rank {self.rank})'


def get_backend(name='device'):
    """The backend for a `--comm-backend` / TrainConfig.kvstore name. Distributed backends are
    created once per process (joining the cluster); later calls return the same one."""
    global _ACTIVE
    if name not in KVSTORE_BACKENDS and name != 'horovod':
        return LocalBackend(name)
    if _ACTIVE is not None:
        if _ACTIVE.name != name:
            raise ValueError(f'this process already joined a {_ACTIVE.name} cluster; it cannot '
                             f'also use {name}')
        return _ACTIVE
    _ACTIVE = HorovodBackend() if name == 'horovod' else KVStoreBackend(name)
    return _ACTIVE


def allreduce_numpy(backend, array):
    """Sum of a numpy array over the workers -> float32 numpy array (a collective)."""
    if backend.num_workers == 1:
        return array
    return backend.allreduce(mx.nd.array(array, dtype='float32')).asnumpy()


def shard_batches(epoch_batches, batches_per_epoch, rank, num_workers):
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
