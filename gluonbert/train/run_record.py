"""What a zoo script's run leaves behind to be understood and continued: `run_config.json` (every
argument after defaults, what was resolved from the data, versions, the command line, the date),
the check that refuses to write into a used --output-dir, and the `inference-<time>/` folder an
--only-inference run writes into."""
import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import sys
from collections.abc import Iterator

import mxnet as mx
import numpy as np

from .. import __version__
from ..files import write_json

LOG = logging.getLogger(__name__)
RUN_CONFIG = 'run_config.json'
# flags that describe one invocation, not the run: never taken from a saved run_config.json
# (how and where this process runs, not what the model is: a multi-worker run's --comm-backend
# and --gpus are not replayed into a later single-process --resume / --only-inference)
PER_INVOCATION = ('resume', 'only_inference', 'overwrite_output_dir', 'params', 'output_dir',
                  'debug', 'no_progress', 'comm_backend', 'gpus')
# what a training run writes into --output-dir (removed by --overwrite-output-dir)
RUN_FILES = (RUN_CONFIG, 'checkpoints', 'best.params', 'best.json', 'history.json',
             'metrics.jsonl', 'train.log', 'curves.png', 'dev_metrics.json',
             'test_predictions.tsv', 'predictions.json', 'export', 'model')


def versions() -> dict:
    """The versions a run was made with: gluonbert, mxnet, numpy, python."""
    return dict(gluonbert=__version__, mxnet=mx.__version__, numpy=np.__version__,
                python=platform.python_version())


def command_line(argv: list | None) -> str:
    """The shell command that ran the script (argv None: this process's own)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join([os.path.basename(sys.argv[0] or 'script')] + [str(a) for a in args])


def write_run_config(folder: str, args: argparse.Namespace, argv: list | None,
                     resolved: dict | None = None) -> str:
    """Write `<folder>/run_config.json` atomically: the arguments (after defaults and a saved
    run's settings), `resolved` (e.g. the task and labels read off the data), the seed,
    versions, the command line and the UTC date. A resumed run keeps the earlier commands."""
    if os.path.abspath(folder) == os.path.abspath(args.output_dir):
        clear_earlier_run(args)  # the inputs are read by now (see check_output_dir)
    path = os.path.join(folder, RUN_CONFIG)
    previous = getattr(args, 'saved_run', None) or {}
    command = command_line(argv)
    record = dict(arguments={k: v for k, v in sorted(vars(args).items())
                             if k != 'saved_run' and _json_safe(v)},
                  resolved=resolved or {}, seed=getattr(args, 'seed', None),
                  versions=versions(), command=command,
                  commands=previous.get('commands', []) + [command],
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    return write_json(path, record)


def _json_safe(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, tuple))


def read_run_config(folder: str) -> dict | None:
    """The run_config.json of `folder` as a dict, or None when there is none."""
    path = os.path.join(folder, RUN_CONFIG)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def used_by(folder: str) -> str | None:
    """What shows that `folder` holds a run (its run_config.json, checkpoints or best.params),
    or None for a new or empty folder."""
    if os.path.isfile(os.path.join(folder, RUN_CONFIG)):
        return RUN_CONFIG
    if os.path.isfile(os.path.join(folder, 'checkpoints', 'LATEST')):
        return 'checkpoints/'
    if os.path.isfile(os.path.join(folder, 'best.params')):
        return 'best.params'
    return None


def check_output_dir(args: argparse.Namespace) -> None:
    """Refuse to train into a used --output-dir unless --resume or --overwrite-output-dir
    (rank 0 only calls it). The earlier run's files are removed later, by write_run_config,
    once every input has been read: a mistake found on the way costs nothing."""
    if getattr(args, 'only_inference', False) or args.resume:
        return
    what = used_by(args.output_dir)
    if what is None:
        return
    if not getattr(args, 'overwrite_output_dir', False):
        raise SystemExit(f'--output-dir {args.output_dir} holds an earlier run (it has {what}): '
                         'pass --resume to continue it, --overwrite-output-dir to replace it, or '
                         'another --output-dir')


def clear_earlier_run(args: argparse.Namespace) -> None:
    """With --overwrite-output-dir (and not --resume / --only-inference), remove the earlier
    run's files from --output-dir."""
    if not getattr(args, 'overwrite_output_dir', False) or args.resume or \
            getattr(args, 'only_inference', False):
        return
    for name in RUN_FILES:
        path = os.path.join(args.output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


@contextlib.contextmanager
def inference_folder(output_dir: str) -> Iterator[str]:
    """A new `<output_dir>/inference-<UTC time>/` for an --only-inference run's results (never
    the training record), removed again if the block raises, so a failed run leaves no
    half-written folder; a suffix keeps two runs in the same second apart."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    folder, n = os.path.join(output_dir, f'inference-{stamp}'), 1
    while os.path.exists(folder):
        n += 1
        folder = os.path.join(output_dir, f'inference-{stamp}-{n}')
    os.makedirs(folder)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@contextlib.contextmanager
def results_folder(args: argparse.Namespace, argv: list | None, resolved: dict,
                   results: dict) -> Iterator[str]:
    """Where a run's final results go: --output-dir for a training run; for an --only-inference
    run a new `inference-<time>/` in it (see `inference_folder`), made only now, with its own
    run_config.json, and named in results['output_dir']."""
    if not getattr(args, 'only_inference', False):
        yield args.output_dir
        return
    with inference_folder(args.output_dir) as folder:
        results['output_dir'] = folder
        LOG.info('writing into %s', folder)
        write_run_config(folder, args, argv, resolved)
        yield folder


def explicit_arguments(parser: argparse.ArgumentParser, argv: list) -> dict:
    """dest -> value of the flags `argv` gives explicitly (defaults left out)."""
    # argparse has no public way to ask which flags were given: parse again with every
    # default suppressed (and nothing required), then put the actions back as they were
    saved = [(action, action.default, action.required) for action in parser._actions]
    try:
        for action, _, _ in saved:
            action.default, action.required = argparse.SUPPRESS, False
        given, _ = parser.parse_known_args(argv)
    finally:
        for action, default, required in saved:
            action.default, action.required = default, required
    return vars(given)


def parse_with_saved_run(parser: argparse.ArgumentParser, argv: list | None,
                         fixed: tuple = ()) -> argparse.Namespace:
    """parse_args, where --resume / --only-inference take every other setting from
    `<output-dir>/run_config.json` (flags given explicitly override it). A flag in `fixed`
    (the architecture, the task, the weights) given with another value than the saved run's
    is refused naming both. `args.saved_run` is the saved record (or None)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument('--output-dir', default=parser.get_default('output_dir'))
    peek.add_argument('--resume', action='store_true')
    peek.add_argument('--only-inference', action='store_true')
    early, _ = peek.parse_known_args(argv)
    saved = read_run_config(early.output_dir) if (early.resume or early.only_inference) \
        and early.output_dir else None
    if saved is None:
        args = parser.parse_args(argv)
        args.saved_run = None
        return args
    known = {action.dest: action for action in parser._actions}
    defaults = {dest: value for dest, value in saved.get('arguments', {}).items()
                if dest in known and dest not in PER_INVOCATION}
    given = explicit_arguments(parser, argv)
    for dest in fixed:
        if dest in given and dest in defaults and given[dest] != defaults[dest]:
            flag = known[dest].option_strings[0]
            parser.error(f'{flag} {given[dest]!r} conflicts with the run in {early.output_dir}, '
                         f'which was trained with {flag} {defaults[dest]!r} ({RUN_CONFIG}): drop '
                         f'{flag}, or train a new run in another --output-dir')
    originals = {dest: (known[dest].default, known[dest].required) for dest in defaults}
    try:
        for dest, value in defaults.items():
            # a saved string would go through the flag's type again (e.g. existing_file)
            known[dest].default, known[dest].required = value, False
        args = parser.parse_args(argv)
    finally:
        for dest, (default, required) in originals.items():
            known[dest].default, known[dest].required = default, required
    args.saved_run = saved
    return args
