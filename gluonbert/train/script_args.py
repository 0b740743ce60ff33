"""Command-line pieces the zoo scripts share: the model and training flags, the contexts of
--gpus and the --dtype check, a worker's start (output folder, logging, seeds), its log line
and the TrainConfig."""
import logging
import os

import mxnet as mx
import numpy as np

from . import distributed
from .loop import TrainConfig
from .mixed_precision import UnsupportedPrecisionError, check_mixed_precision


def add_model_arguments(group, default_model='bert_12_768_12'):
    """Add --model, --dataset-name, --pretrained, --cased and --dropout to an argparse group."""
    group.add_argument('--model', default=default_model,
                       help='registered model name (default {})'.format(default_model))
    group.add_argument('--dataset-name', help='pretrained weights from the store, e.g. '
                                              'all_minilm_l6_v2, book_corpus_wiki_en_uncased')
    group.add_argument('--pretrained', help='checkpoint path: HuggingFace folder, Google TF '
                                            'checkpoint, GluonNLP .params or gluonbert folder')
    group.add_argument('--cased', action='store_true', help='cased vocabulary: do not '
                                                            'lowercase')
    group.add_argument('--dropout', type=float, default=0.1, help='dropout (default 0.1)')


def add_training_arguments(group, lr, epochs, output_dir, batch_help, epochs_help):
    """Add the optimizer, device, cluster and run flags with the script's defaults and words."""
    group.add_argument('--batch-size', type=int, default=32,
                       help='{} per micro-batch and context (default 32)'.format(batch_help))
    group.add_argument('--accumulate', type=int, default=1,
                       help='micro-batches per optimizer step (default 1)')
    group.add_argument('--lr', type=float, default=lr,
                       help='peak learning rate for the global batch (default {:g})'.format(lr))
    group.add_argument('--epochs', type=int, default=epochs,
                       help='{} (default {})'.format(epochs_help, epochs))
    group.add_argument('--warmup-ratio', type=float, default=0.1,
                       help='share of the steps with linear warmup, then linear decay '
                            '(default 0.1)')
    group.add_argument('--weight-decay', type=float, default=0.01,
                       help='AdamW weight decay (default 0.01)')
    group.add_argument('--max-grad-norm', type=float, default=1.0,
                       help='clip the global gradient norm (default 1.0; 0: no clipping)')
    group.add_argument('--ema-decay', type=float,
                       help='keep an exponential moving average of the weights with this decay '
                            '(e.g. 0.999): evaluation, the best model and the export use it; '
                            "the trained weights' dev metrics are logged as raw_<metric> "
                            '(default: no average)')
    group.add_argument('--eval-every', type=int, help='evaluate every N steps (default: each '
                                                      'epoch)')
    group.add_argument('--log-every', type=int, default=20,
                       help='steps between loss logs (default 20)')
    group.add_argument('--gpus', default='', help='comma-separated GPU ids; empty: CPU')
    group.add_argument('--comm-backend', default='device', choices=distributed.BACKENDS,
                       help='device: one process; dist_sync, dist_sync_device, dist_async '
                            '(MXNet parameter server) or horovod: one worker of a cluster '
                            'started by scripts/launch.py (default device)')
    group.add_argument('--seed', type=int, default=2,
                       help='seeds data order, weights and dropout; the same on every worker '
                            '(default 2)')
    group.add_argument('--output-dir', default=output_dir,
                       help='where everything is written (default {})'.format(output_dir))
    group.add_argument('--resume', action='store_true', help='continue from the last '
                                                             'checkpoint in --output-dir')
    group.add_argument('--no-progress', action='store_true', help='hide progress bars')
    group.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'],
                       help='training precision: float16 (GPUs, dynamic loss scaling) or '
                            'bfloat16 (AVX-512 CPUs) compute through MXNet AMP over float32 '
                            'weights; evaluation and export stay float32 (default float32)')


def contexts(gpus):
    """--gpus "0,1" -> [mx.gpu(0), mx.gpu(1)]; empty -> [mx.cpu()]; anything else exits."""
    try:
        ids = [int(g) for g in gpus.split(',') if g.strip()]
    except ValueError:
        ids = None
    if ids is None or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise SystemExit('--gpus {!r}: expected distinct comma-separated GPU ids such as "0,1", '
                         'or nothing for the CPU'.format(gpus))
    return [mx.gpu(i) for i in ids] or [mx.cpu()]


def check_dtype(args, ctx):
    """Exit with the reason when --dtype cannot train on these contexts (before any loading)."""
    if getattr(args, 'only_inference', False):
        return  # evaluation is float32
    try:
        check_mixed_precision(args.dtype, ctx)
    except (UnsupportedPrecisionError, ValueError) as err:
        raise SystemExit('--dtype {}: {}'.format(args.dtype, err)) from err


def start_worker(args, backend):
    """Rank 0 makes --output-dir and logs at INFO (others: warnings); all seed with --seed."""
    if getattr(args, 'only_inference', False) and backend.num_workers > 1:  # scripts with it
        raise SystemExit('--only-inference runs in one process: drop --comm-backend')
    if backend.is_root:
        os.makedirs(args.output_dir, exist_ok=True)
    logging.basicConfig(level=logging.INFO if backend.is_root else logging.WARNING,
                        format='%(message)s')
    mx.random.seed(args.seed)
    np.random.seed(args.seed)


def describe_run(backend, args, num_contexts, lr):
    """The log line naming the workers, the global batch and its parts, and the lr."""
    return '{}; global batch {} = {} per context x {} context(s) x {} worker(s) x {} ' \
           'accumulated; lr {:g}'.format(
               backend.describe(), args.batch_size * num_contexts * backend.num_workers *
               args.accumulate, args.batch_size, num_contexts, backend.num_workers,
               args.accumulate, lr)


def train_config(args, **task_specific):
    """TrainConfig from the common flags (--max-grad-norm 0: none); keywords add or override."""
    fields = dict(lr=args.lr, epochs=args.epochs, warmup_ratio=args.warmup_ratio,
                  weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm or None,
                  accumulate=args.accumulate, log_every=args.log_every,
                  eval_every=args.eval_every, seed=args.seed, progress=not args.no_progress,
                  kvstore=args.comm_backend, dtype=args.dtype, ema_decay=args.ema_decay)
    fields.update(task_specific)
    return TrainConfig(**fields)
