"""Command-line pieces the zoo scripts share: the model and training flags with their parse-time
checks (a --resume / --only-inference run takes its settings from run_config.json), the contexts
of --gpus and the --dtype check, a worker's start (output folder, logging, seeds), its log line
and the TrainConfig."""
import argparse
import logging
import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TypeVar

import mxnet as mx
import numpy as np

from ..errors import UsageError, add_debug_flag
from . import distributed
from .loop import TrainConfig
from .mixed_precision import UnsupportedPrecisionError, check_mixed_precision
from .run_record import check_output_dir, parse_with_saved_run

D = TypeVar('D')  # require_rows returns the dataset it is given

# flags that fix what the weights are: a --resume / --only-inference run must not change them
WEIGHTS_FLAGS = ('model', 'dataset_name', 'pretrained', 'from_scratch', 'cased')


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not {"an integer" if kind is int else "a number"}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{text!r} is not a finite number')
    return value


def _bounded(kind, accepts, wanted: str):
    """An argparse type reading a finite `kind` (int or float) for which `accepts(value)` holds;
    otherwise argparse's error says it `must be {wanted}`."""
    def check(text: str) -> int | float:
        value = _number(kind, text)
        if not accepts(value):
            raise argparse.ArgumentTypeError(f'must be {wanted}; got {text}')
        return value
    check.__doc__ = f'argparse type: {wanted}.'
    return check


positive_int = _bounded(int, lambda v: v >= 1, 'a whole number >= 1')
non_negative_int = _bounded(int, lambda v: v >= 0, 'a whole number >= 0')
positive_float = _bounded(float, lambda v: v > 0, 'a number > 0')
non_negative_float = _bounded(float, lambda v: v >= 0, 'a number >= 0')
fraction = _bounded(float, lambda v: 0 <= v <= 1, 'in [0, 1]')
probability = _bounded(float, lambda v: 0 <= v < 1, 'in [0, 1)')  # a dropout rate, a decay


def existing_file(text: str) -> str:
    """argparse type: the path of an existing file."""
    if not os.path.isfile(text):
        what = 'a folder, not a file' if os.path.isdir(text) else 'no such file'
        raise argparse.ArgumentTypeError(f'{text}: {what}')
    return text


def existing_dir(text: str) -> str:
    """argparse type: the path of an existing folder."""
    if not os.path.isdir(text):
        what = 'a file, not a folder' if os.path.exists(text) else 'no such folder'
        raise argparse.ArgumentTypeError(f'{text}: {what}')
    return text


def existing_path(text: str) -> str:
    """argparse type: an existing file or folder (a checkpoint)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f'{text}: no such file or folder')
    return text


def writable_dir(text: str) -> str:
    """argparse type: a folder to write into: not an existing file, inside a folder."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f'{text} is a file; pass a folder')
    parent = os.path.dirname(os.path.abspath(text))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f'{text}: cannot create it under {parent} (not a '
                                         'writable folder)')
    return text


def parse_script_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
                      fixed: Sequence[str] = WEIGHTS_FLAGS) -> argparse.Namespace:
    """parse_args plus the checks across flags (weights source, cluster), in argparse's format
    (exit code 2) before anything is built or written. With --resume or --only-inference the
    settings of `<output-dir>/run_config.json` are the defaults; a flag of `fixed` given with
    another value is refused naming both (see run_record.parse_with_saved_run)."""
    args = parse_with_saved_run(parser, argv, fixed)
    check_weights_source(parser, args)
    check_launched_worker(parser, args)
    return args


def check_weights_source(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exactly one of --dataset-name, --pretrained, --from-scratch: random weights are opt-in
    (not asked with --only-inference, whose weights come from --params)."""
    given = [flag for flag, value in (('--dataset-name', args.dataset_name),
                                      ('--pretrained', args.pretrained),
                                      ('--from-scratch', args.from_scratch)) if value]
    if not given and not getattr(args, 'only_inference', False):
        parser.error('no weights to start from: pass --dataset-name (pretrained weights from the '
                     'store, e.g. all_minilm_l6_v2), --pretrained PATH (a checkpoint), or '
                     '--from-scratch to train from random weights')
    if args.from_scratch and len(given) > 1:
        parser.error(f'--from-scratch contradicts {given[0]}: drop one of them')


# environment variables scripts/launch.py sets in each worker of a cluster
LAUNCHED_WORKER_VARIABLES = ('DMLC_ROLE', 'HOROVOD_RANK')


def check_launched_worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A worker started by scripts/launch.py must join its cluster: refuse --comm-backend device,
    which would train independent copies into one --output-dir."""
    launched = [f'{name}={os.environ[name]}' for name in LAUNCHED_WORKER_VARIABLES
                if os.environ.get(name)]
    if launched and args.comm_backend == 'device':
        parser.error(f'this process is a worker started by scripts/launch.py ({launched[0]}) but '
                     '--comm-backend is device: every worker would train its own copy into the '
                     'same --output-dir; pass the launcher\'s backend, e.g. --comm-backend '
                     'dist_sync')


def require_rows(dataset: D, path: str) -> D:
    """The dataset read from `path`, or UsageError when it holds no samples."""
    if len(dataset) == 0:
        skipped = getattr(dataset, 'num_skipped', 0)
        why = f'all {skipped} rows were skipped' if skipped else 'it has no rows after the header'
        raise UsageError(f'{path}: no samples ({why}); nothing to train or evaluate on: pass a '
                         'file with data')
    return dataset


def add_weights_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup,
                          default_model: str = 'bert_12_768_12',
                          scratch_help: str ='start from random weights (needed when neither '
                                       '--dataset-name nor --pretrained is given)') -> None:
    """Add --model and where its weights come from: --dataset-name, --pretrained or, asked for
    explicitly, --from-scratch (see check_weights_source)."""
    group.add_argument('--model', default=default_model,
                       help=f'registered model name (default {default_model})')
    group.add_argument('--dataset-name', help='pretrained weights from the store, e.g. '
                                              'all_minilm_l6_v2, book_corpus_wiki_en_uncased')
    group.add_argument('--pretrained', type=existing_path,
                       help='checkpoint path: HuggingFace folder, Google TF '
                            'checkpoint, GluonNLP .params or gluonbert folder')
    group.add_argument('--from-scratch', action='store_true', help=scratch_help)


def add_model_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup,
                        default_model: str = 'bert_12_768_12') -> None:
    """Add add_weights_arguments' flags, --cased and --dropout to an argparse group."""
    add_weights_arguments(group, default_model)
    group.add_argument('--cased', action='store_true', help='cased vocabulary: do not lowercase')
    group.add_argument('--dropout', type=probability, default=0.1, help='dropout (default 0.1)')


def add_inference_arguments(group: argparse._ArgumentGroup, what: str) -> None:
    """Add --only-inference (no training: `what`, e.g. 'evaluate dev and predict test', with
    the settings of the run in --output-dir) and --params."""
    group.add_argument('--only-inference', action='store_true',
                       help=f'no training: load --params, {what} into '
                            '<output-dir>/inference-<time>/, with the settings of the run in '
                            '--output-dir (only --output-dir is needed)')
    group.add_argument('--params', type=existing_file,
                       help='with --only-inference: parameters file (default '
                            '<output-dir>/best.params)')


def add_training_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup, lr: float,
                           epochs: int | float, output_dir: str, batch_help: str,
                           epochs_help: str) -> None:
    """Add the optimizer, device, cluster and run flags (and --debug) with the script's defaults
    and words."""
    group.add_argument('--batch-size', type=positive_int, default=32,
                       help=f'{batch_help} per micro-batch and context (default 32)')
    group.add_argument('--accumulate', type=positive_int, default=1,
                       help='micro-batches per optimizer step (default 1)')
    group.add_argument('--lr', type=positive_float, default=lr,
                       help=f'peak learning rate for the global batch (default {lr:g})')
    group.add_argument('--epochs', type=positive_int, default=epochs,
                       help=f'{epochs_help} (default {epochs})')
    group.add_argument('--warmup-ratio', type=fraction, default=0.1,
                       help='share of the steps with linear warmup, then linear decay '
                            '(default 0.1)')
    group.add_argument('--weight-decay', type=non_negative_float, default=0.01,
                       help='AdamW weight decay (default 0.01)')
    group.add_argument('--max-grad-norm', type=non_negative_float, default=1.0,
                       help='clip the global gradient norm (default 1.0; 0: no clipping)')
    group.add_argument('--ema-decay', type=probability,
                       help='keep an exponential moving average of the weights with this decay '
                            '(e.g. 0.999): evaluation, the best model and the export use it; '
                            "the trained weights' dev metrics are logged as raw_<metric> "
                            '(default: no average)')
    group.add_argument('--eval-every', type=positive_int,
                       help='evaluate every N steps (default: each epoch)')
    group.add_argument('--log-every', type=positive_int, default=20,
                       help='steps between loss logs (default 20)')
    group.add_argument('--gpus', default='', help='comma-separated GPU ids; empty: CPU')
    group.add_argument('--comm-backend', default='device', choices=distributed.BACKENDS,
                       help='device: one process; dist_sync, dist_sync_device, dist_async '
                            '(MXNet parameter server) or horovod: one worker of a cluster '
                            'started by scripts/launch.py (default device)')
    group.add_argument('--seed', type=non_negative_int, default=2,
                       help='seeds data order, weights and dropout; the same on every worker '
                            '(default 2)')
    group.add_argument('--output-dir', type=writable_dir, default=output_dir,
                       help=f'where everything is written (default {output_dir})')
    group.add_argument('--resume', action='store_true',
                       help='continue from the last checkpoint in --output-dir, with the '
                            'settings of its run_config.json (only --output-dir is needed; a '
                            'larger --epochs extends the lr schedule)')
    group.add_argument('--overwrite-output-dir', action='store_true',
                       help='replace the run in a used --output-dir (without it, or --resume, '
                            'a used one is refused)')
    group.add_argument('--no-progress', action='store_true',
                       help='hide progress bars (they are shown only when stderr is a terminal)')
    group.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'],
                       help='training precision: float16 (GPUs, dynamic loss scaling) or '
                            'bfloat16 (AVX-512 CPUs) compute through MXNet AMP over float32 '
                            'weights; evaluation and export stay float32 (default float32)')
    add_debug_flag(group)


def contexts(gpus: str | None) -> list[mx.Context]:
    """--gpus "0,1" -> [mx.gpu(0), mx.gpu(1)]; empty -> [mx.cpu()]; anything else exits."""
    try:
        ids = [int(g) for g in gpus.split(',') if g.strip()]
    except ValueError:
        ids = None
    if ids is None or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise SystemExit(f'--gpus {gpus!r}: expected distinct comma-separated GPU ids such as '
                         f'"0,1", '
                         'or nothing for the CPU')
    return [mx.gpu(i) for i in ids] or [mx.cpu()]


def check_dtype(args: argparse.Namespace, ctx: Sequence[mx.Context]) -> None:
    """Exit with the reason when --dtype cannot train on these contexts (before any loading)."""
    if getattr(args, 'only_inference', False):
        return  # evaluation is float32
    try:
        check_mixed_precision(args.dtype, ctx)
    except (UnsupportedPrecisionError, ValueError) as err:
        raise SystemExit(f'--dtype {args.dtype}: {err}') from err


def start_worker(args: argparse.Namespace, backend: distributed.Backend) -> None:
    """Rank 0 makes --output-dir (an --only-inference run makes its own folder in it once it has
    results) and logs at INFO (others: warnings); all seed with --seed."""
    inference_only = getattr(args, 'only_inference', False)
    if inference_only and backend.num_workers > 1:  # scripts with it
        raise SystemExit('--only-inference runs in one process: drop --comm-backend')
    if backend.is_root:
        check_output_dir(args)
        if not inference_only:
            os.makedirs(args.output_dir, exist_ok=True)
    # on a terminal the bars show the time; in a file every line carries its own
    logging.basicConfig(level=logging.INFO if backend.is_root else logging.WARNING,
                        format='%(message)s' if sys.stderr.isatty() else
                        '%(asctime)s %(levelname)s %(name)s: %(message)s')
    # warnings become one-line log records too (timestamped in a file)
    warnings.formatwarning = _one_line_warning
    logging.captureWarnings(True)
    mx.random.seed(args.seed)
    np.random.seed(args.seed)


def _one_line_warning(message, category, filename, lineno, line=None):
    """A warning as one log line: 'UserWarning: text (file.py:12)'."""
    return f'{category.__name__}: {message} ({os.path.basename(filename)}:{lineno})'


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars: only on a terminal (a log file gets none) and without --no-progress."""
    return not args.no_progress and sys.stderr.isatty()


def describe_run(backend: distributed.Backend, args: argparse.Namespace, num_contexts: int,
                 lr: float) -> str:
    """The log line naming the workers, the global batch and its parts, and the lr."""
    return '{}; global batch {} = {} per context x {} context(s) x {} worker(s) x {} ' \
           'accumulated; lr {:g}'.format(
               backend.describe(), args.batch_size * num_contexts * backend.num_workers *
               args.accumulate, args.batch_size, num_contexts, backend.num_workers,
               args.accumulate, lr)


def train_config(args: argparse.Namespace, **task_specific: Any) -> TrainConfig:
    """TrainConfig from the common flags (--max-grad-norm 0: none); keywords add or override."""
    fields = dict(lr=args.lr, epochs=args.epochs, warmup_ratio=args.warmup_ratio,
                  weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm or None,
                  accumulate=args.accumulate, log_every=args.log_every,
                  eval_every=args.eval_every, seed=args.seed, progress=show_progress(args),
                  dtype=args.dtype, ema_decay=args.ema_decay)
    fields.update(task_specific)
    return TrainConfig(**fields)
