"""How a command-line run ends: one line naming the problem (and its fix) and an exit code.

Every `gluonbert` subcommand and zoo script runs its `main(argv)` through `run_main`:

- a mistake in the input (a bad flag value, a missing or malformed file, a checkpoint that does
  not fit: `UsageError`, `ValueError`, `TypeError`, `FileNotFoundError`, or `SystemExit` with a
  message) -> `<prog>: error: <message>`, exit code 2 (argparse's own);
- a failure while running (`RunFailedError`, non-finite loss, MXNet errors, a full disk, and a
  `KeyError` / `IndexError`, which is a bug, not a mistake of the user's) -> `<prog>: failed:
  <message>`, exit code 1;
- Ctrl-C -> `<prog>: interrupted`, exit code 130 (checkpoints are written atomically, so the
  last complete one stays the one `--resume` continues from).

`--debug` on the command line or `GLUONBERT_DEBUG=1` re-raises instead, with the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import mxnet as mx

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
DEBUG_VARIABLE = 'GLUONBERT_DEBUG'


class UsageError(ValueError):
    """Bad input from the user: the message names the file, flag or value and the fix."""


class RunFailedError(RuntimeError):
    """The run could not go on (the message says why and what is kept on disk)."""


class CheckpointMismatchError(UsageError):
    """A checkpoint was written by another model, head, pooling or label set than this run's."""


class DamagedFileError(UsageError):
    """A parameters file cannot be read (truncated, not a parameters file)."""


INPUT_ERRORS = (UsageError, ValueError, TypeError, FileNotFoundError,
                FileExistsError, NotADirectoryError, IsADirectoryError)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Add --debug (show the traceback of an error) to an argparse parser."""
    parser.add_argument('--debug', action='store_true',
                        help=f'on an error, show the Python traceback (or set {DEBUG_VARIABLE}=1)')


def debug_requested(argv: Sequence[str]) -> bool:
    """True when --debug is among the options of `argv` or GLUONBERT_DEBUG is set (not 0)."""
    options = list(argv)[:list(argv).index('--')] if '--' in argv else list(argv)
    return '--debug' in options or os.environ.get(DEBUG_VARIABLE, '0') not in ('', '0')


def one_line(err: BaseException) -> str:
    """An exception's message on one line, without MXNet's C++ stack trace and hints."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    head, marker, tail = text.partition('Traceback (most recent call last)')
    if marker or isinstance(err, mx.base.MXNetError):  # MXNet's text, maybe after our words
        detail = mxnet_message(marker + tail if marker else text)
        head = head.strip().rstrip(':').strip()
        text = f'{head}: {detail}' if head else detail
    if 'does not match the cached version' in text:  # MXNet's words swap stored and input
        text = ('a hybridized model was called with other inputs than at its first call (e.g. '
                'first with valid_length, then without): pass the same inputs every call, or '
                'call .hybridize() again before changing them')
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return ' '.join(lines) if lines else type(err).__name__


def mxnet_message(text: str) -> str:
    """The useful line of an MXNet error text, without its stack trace and file positions."""
    text = text.split('Stack trace:')[0]
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith(('Traceback (most recent call last)', 'File "', '[bt]')):
            continue
        return line[len('MXNetError: '):] if line.startswith('MXNetError: ') else line
    return 'MXNet error'


def exit_code_and_line(err: BaseException, prog: str) -> tuple[int, str]:
    """(exit code, the line to print) for an exception that ended `prog`'s main."""
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, (f'{prog}: interrupted; what was written is complete (a '
                                  'training run keeps its last checkpoint: --resume continues '
                                  'from it)')
    if isinstance(err, INPUT_ERRORS):
        return EXIT_USAGE, f'{prog}: error: {one_line(err)}'
    kind = '' if isinstance(err, (RunFailedError, OSError, mx.base.MXNetError)) else \
        f'{type(err).__name__}: '
    return EXIT_FAILED, (f'{prog}: failed: {kind}{one_line(err)} (rerun with --debug for the '
                         'traceback)')


def run_main(main: Callable[[list[str]], object], argv: Sequence[str] | None = None,
             prog: str | None = None) -> int:
    """Run `main(argv)` as a command -> its exit code; an error is printed as one line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or os.path.basename(sys.argv[0] or 'gluonbert')
    debug = debug_requested(argv)
    try:
        result = main(argv)
    except SystemExit as err:
        if err.code is None or isinstance(err.code, int):
            return err.code or 0  # argparse (2, its message already printed), --help (0)
        if debug:
            raise
        print(f'{prog}: error: {err.code}', file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (`gluonbert predict ... | head`): the output it wanted was written;
        # point stdout at devnull so Python's exit-time flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except BaseException as err:
        if debug:
            raise
        code, line = exit_code_and_line(err, prog)
        print(line, file=sys.stderr)
        return code
    # a command's own exit code (e.g. the launcher's), or 0 for scripts returning their results
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
