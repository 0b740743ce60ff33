"""A worker process for tests/test_distributed.py (started by gluonbert.launcher), and the
shared pieces the test's single-process reference uses.

train: a tiny BERT classifier, dropout off, on a fixed global batch order; this worker takes its
       slice of every global batch; writes params-rank<r>.npz and history-rank<r>.json.
hang:  join the cluster, write ready-rank<r>, then all-reduce forever (for the kill tests).
allreduce: many back-to-back all-reduces of changing values without reading them in between
       (rank 1 lags behind); writes allreduce-rank<r>.json with the sums.
pretrain: run model_zoo/bert/pretrain.py --comm-backend <backend> with the arguments after
       `--` as this worker; writes the parameters it holds when training ends to
       params-rank<r>.npz.
"""
import argparse
import json
import os
import sys
import time

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gluonbert.model import BERTClassifier, BERTEncoder, BERTModel  # noqa: E402
from gluonbert.train import TrainConfig, TrainingLoop  # noqa: E402
from gluonbert.train.distributed import allreduce_numpy, get_backend  # noqa: E402

TINY = dict(vocab_size=50, units=16, hidden_size=32, num_heads=4, num_layers=2, max_length=24,
            dropout=0.0)
CE = mx.gluon.loss.SoftmaxCrossEntropyLoss()


def classifier(seed=7):
    """The tiny classifier with weights fixed by `seed`."""
    mx.random.seed(seed)
    np.random.seed(seed)
    bert = BERTModel(BERTEncoder(**TINY), use_pooler=True, use_decoder=False,
                     use_classifier=False)
    bert.initialize()
    net = BERTClassifier(bert, num_classes=2, dropout=0.0)
    net.initialize_head()
    return net


def make_data(n, seq_len=8, seed=0):
    """Label = whether the first token id is below 27; varied lengths, 0 = padding."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(4, 50, size=(n, seq_len))
    labels = (ids[:, 0] < 27).astype('int64')
    lengths = rng.randint(4, seq_len + 1, size=n)
    for row in range(n):
        ids[row, lengths[row]:] = 0
    return [a.astype('float32') for a in (ids, np.zeros_like(ids), lengths, labels)]


def ce_loss(net, ids, types, lengths, labels):
    """Per-sample cross-entropy."""
    return CE(net(ids, types, lengths), labels)


def worker_batches(data, global_batch, rank, num_workers, seed=0):
    """epoch -> this worker's slices of the global batches (shuffled per epoch), batch count."""
    def epoch_batches(epoch):
        order = np.random.RandomState(seed + epoch).permutation(len(data[0]))
        for start in range(0, len(order), global_batch):
            idx = np.array_split(order[start:start + global_batch], num_workers)[rank]
            yield tuple(a[idx] for a in data)
    return epoch_batches, -(-len(data[0]) // global_batch)


def accuracy(dev, backend):
    """Dev accuracy, each worker scoring every num_workers-th example, counts all-reduced."""
    def evaluate(net):
        mine = slice(backend.rank, None, backend.num_workers)
        pred = net(*[mx.nd.array(a[mine]) for a in dev[:3]]).argmax(axis=1).asnumpy()
        correct, total = allreduce_numpy(backend, np.array([(pred == dev[3][mine]).sum(),
                                                            len(pred)], dtype='float32'))
        return {'accuracy': float(correct / total)}
    return evaluate


def train(backend_name, global_batch, num_samples=35, epochs=2, max_grad_norm=1.0,
          output_dir=None, contexts=1, max_steps=None, resume=False):
    """Train the tiny classifier as one worker of `backend_name` (on `contexts` CPU contexts)
    -> (net, state)."""
    backend = get_backend(backend_name)
    data, dev = make_data(num_samples), make_data(12, seed=1)
    net = classifier()
    ctx = [mx.cpu(i) for i in range(contexts)]
    net.collect_params().reset_ctx(ctx)
    config = TrainConfig(lr=1e-3, epochs=epochs, warmup_ratio=0.25, progress=False, log_every=2,
                         eval_every=3, max_grad_norm=max_grad_norm)
    loop = TrainingLoop(net, ce_loss, ctx, config, output_dir=output_dir, backend=backend)
    batches, per_epoch = worker_batches(data, global_batch, backend.rank, backend.num_workers)
    evaluate = accuracy(dev, backend) if backend.synchronous else None
    return net, loop.fit(batches, per_epoch, evaluate, resume=resume, max_steps=max_steps)


def params_of(net):
    """name -> numpy array."""
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}


def run_pretrain(script_argv, out):
    """pretrain.main(script_argv) on this worker; saves the weights fit ends with per rank."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    'model_zoo', 'bert'))
    import pretrain
    fit = TrainingLoop.fit

    def fit_and_save(loop, *args, **kwargs):
        state = fit(loop, *args, **kwargs)
        np.savez(os.path.join(out, f'params-rank{loop.backend.rank}.npz'),
                 **params_of(loop.net))
        return state
    TrainingLoop.fit = fit_and_save
    pretrain.main(script_argv)


def main(argv=None):
    """Run one worker."""
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index('--') if '--' in argv else len(argv)
    argv, script_argv = argv[:split], argv[split + 1:]
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['train', 'hang', 'allreduce', 'pretrain'])
    p.add_argument('--backend', required=True)
    p.add_argument('--global-batch', type=int, default=8)
    p.add_argument('--num-samples', type=int, default=35)
    p.add_argument('--no-clip', action='store_true')
    p.add_argument('--contexts', type=int, default=1, help='CPU contexts per worker')
    p.add_argument('--max-steps', type=int, help='stop after this step (a "crash")')
    p.add_argument('--resume', action='store_true', help='continue from out/run/checkpoints')
    p.add_argument('--out', required=True)
    args = p.parse_args(argv)
    if args.mode == 'pretrain':
        run_pretrain(script_argv + ['--comm-backend', args.backend], args.out)
        return
    if args.mode == 'hang':
        backend = get_backend(args.backend)
        open(os.path.join(args.out, f'ready-rank{backend.rank}'), 'w').close()
        while True:
            allreduce_numpy(backend, np.ones(1))
            time.sleep(0.1)
    if args.mode == 'allreduce':
        backend = get_backend(args.backend)
        sums = []
        for i in range(60):
            if backend.rank == 1 and i % 3 == 0:
                time.sleep(0.02)  # the other worker runs ahead into the next calls
            sums.append(backend.allreduce(mx.nd.array([100.0 * i + backend.rank])))
        with open(os.path.join(args.out, f'allreduce-rank{backend.rank}.json'),
                  'w') as f:
            json.dump([float(s.asscalar()) for s in sums], f)
        return
    net, state = train(args.backend, args.global_batch, args.num_samples,
                       max_grad_norm=None if args.no_clip else 1.0,
                       output_dir=os.path.join(args.out, 'run'), contexts=args.contexts,
                       max_steps=args.max_steps, resume=args.resume)
    rank = get_backend(args.backend).rank
    np.savez(os.path.join(args.out, f'params-rank{rank}.npz'), **params_of(net))
    with open(os.path.join(args.out, f'history-rank{rank}.json'), 'w') as f:
        json.dump(state['history'], f)


if __name__ == '__main__':
    main()
