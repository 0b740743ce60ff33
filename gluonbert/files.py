"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Every gluonbert writer goes through here. Temporary names start with '.' beside the target (the
same file system, so the final rename is atomic) and are removed when the write fails. New files
and folders get the permissions the user's umask gives (mkstemp/mkdtemp alone would make them
private to the owner).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask can only be
    read by setting it, which would leave other threads' new files world-writable meanwhile)."""
    try:
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_file_beside(path: str, suffix: str = '.part') -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.',
                                suffix=suffix)
    os.close(fd)
    os.chmod(temp, 0o666 & ~_umask())
    return temp


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '.part') -> Iterator[str]:
    """Yield a temporary path beside `path` for a writer that wants a file name (MXNet's
    save_parameters, matplotlib's savefig); it replaces `path` when the block ends without
    error, and is removed otherwise. `suffix` keeps the extension a writer looks at ('.png')."""
    temp = _temp_file_beside(path, suffix)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', encoding: str | None = 'utf-8') -> Iterator[IO]:
    """Open a temporary file beside `path` for writing ('w' or 'wb'); flushed to disk and moved
    onto `path` when the block ends without error, removed otherwise."""
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as temp:
        with open(temp, mode, encoding=None if 'b' in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: str, text: str) -> str:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_open(path) as f:
        f.write(text)
    return path


def write_json(path: str, data: Any) -> str:
    """Write `data` as indented, key-sorted JSON atomically; returns the path."""
    with atomic_open(path) as f:
        json.dump(data, f, indent=2, sort_keys=True)
    return path


def write_named_by_content(folder: str, prefix: str, writer: Callable[[str], Any],
                           name_of: Callable[[str], str]) -> str:
    """Call `writer(temp)` on a temporary file in `folder`, then move it atomically to
    `folder/name_of(temp)`, a name only the written content gives (e.g. its checksum, as the
    store names its files); returns that name."""
    temp = _temp_file_beside(os.path.join(folder, prefix))
    try:
        writer(temp)
        name = name_of(temp)
        os.replace(temp, os.path.join(folder, name))
        return name
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_with(path: str, writer: Callable[[str], Any], suffix: str = '.part') -> str:
    """Call `writer(temp_path)` and move the result onto `path` atomically; returns the path."""
    with atomic_path(path, suffix) as temp:
        writer(temp)
    return path


@contextlib.contextmanager
def staged_files(path_prefix: str, suffixes: Sequence[str]) -> Iterator[str]:
    """Yield a temporary prefix beside `path_prefix` for a writer that writes several files named
    prefix + suffix (MXNet's export: '-symbol.json', '-0000.params'); when the block ends without
    error each moves onto path_prefix + suffix in the order given (put the file readers open
    first last), and nothing moves otherwise."""
    folder = os.path.dirname(os.path.abspath(path_prefix))
    os.makedirs(folder, exist_ok=True)
    temp = tempfile.mkdtemp(dir=folder, prefix='.' + os.path.basename(path_prefix) + '.')
    try:
        yield os.path.join(temp, 'staged')
        for suffix in suffixes:
            staged = os.path.join(temp, 'staged' + suffix)
            os.chmod(staged, 0o666 & ~_umask())
            os.replace(staged, path_prefix + suffix)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(directory: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary folder beside `directory`; when the block ends without error it
    replaces `directory` (refused if it exists, unless overwrite); otherwise it is removed."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(directory) + '.')
    os.chmod(temp, 0o777 & ~_umask())
    try:
        yield temp
        replace_path(temp, directory, overwrite)
    finally:
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)


def replace_path(temp_path: str, final_path: str, overwrite: bool = False) -> None:
    """Move a fully written temp file or folder into place; refuse to clobber unless asked."""
    if os.path.lexists(final_path):
        if not overwrite:
            raise FileExistsError(f'{final_path} already exists; pass overwrite=True '
                                  '(--overwrite) to replace it')
        if os.path.isdir(final_path) and not os.path.islink(final_path):
            aside = os.path.join(os.path.dirname(os.path.abspath(final_path)),
                                 f'.{os.path.basename(final_path)}.old-{os.getpid()}')
            os.rename(final_path, aside)
            try:
                os.rename(temp_path, final_path)
            except OSError:
                os.rename(aside, final_path)  # put the old folder back: lose nothing
                raise
            shutil.rmtree(aside, ignore_errors=True)
            return
    os.replace(temp_path, final_path)
