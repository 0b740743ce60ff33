"""Verified local files: find by sha1, else download from a mirror of GluonNLP's layout.

A file is only ever returned after its sha1 matched. Downloads go to a temp file in the cache
folder and are renamed into place once verified, under a per-file lock, so two processes
fetching the same file neither corrupt it nor download it twice.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence

from ..files import atomic_open

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOG = logging.getLogger(__name__)
REPO_ENV = 'GLUONBERT_REPO'
HOME_ENV = 'GLUONBERT_HOME'
# GluonNLP's layout under a repository URL: each file zipped on its own
URL_LAYOUT = {'params': 'gluon/models/{file_name}.zip',
              'vocab': 'gluon/dataset/vocab/{file_name}.zip'}
_CHUNK = 1 << 20


class StoreError(OSError):
    """A pretrained file could not be found, fetched or verified."""


class _RetryableError(Exception):
    """One download attempt failed in a way another attempt may not."""


def default_root(root: str | os.PathLike | None = None) -> str:
    """The cache folder: `root`, else $GLUONBERT_HOME/models, else ~/.gluonbert/models."""
    if root is not None:
        return os.path.abspath(os.path.expanduser(str(root)))
    home = os.environ.get(HOME_ENV) or os.path.join('~', '.gluonbert')
    return os.path.abspath(os.path.expanduser(os.path.join(home, 'models')))


def gluonnlp_cache() -> str:
    """GluonNLP/MXNet's own cache ($MXNET_HOME/models, default ~/.mxnet/models), searched too."""
    home = os.environ.get('MXNET_HOME') or os.path.join('~', '.mxnet')
    return os.path.abspath(os.path.expanduser(os.path.join(home, 'models')))


def sha1_of(path: str) -> str:
    """Hex sha1 of a file's bytes."""
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def quarantine(path: str, why: str) -> str:
    """Rename a file that failed verification so it is never picked up again; returns the new
    path. Call it holding the file's lock: an unlocked caller could move a file another process
    has just installed. A file already gone (moved by another process) is not an error."""
    bad = path + '.sha1-mismatch'
    try:
        os.replace(path, bad)
    except FileNotFoundError:
        return bad
    LOG.warning('%s: %s; moved it to %s', path, why, bad)
    return bad


class FileLock:
    """An exclusive inter-process lock on `path` (flock), waiting at most `timeout` seconds.

    The lock file is removed on release, so a store never keeps empty `.lock` files. A waiter
    that wakes up holding the lock on a file its previous holder removed (no longer at `path`)
    opens `path` again and waits there, so two processes never both hold the lock.
    """

    def __init__(self, path: str, timeout: float = 600.0):
        self.path, self.timeout, self._fd = path, timeout, None

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:
                self._fd = fd
                return self  # no flock: renaming verified files into place keeps them whole
            self._wait_for(fd, deadline)
            if self._still_at_path(fd):
                self._fd = fd
                return self
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _wait_for(self, fd, deadline):
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f'timed out after {self.timeout:.0f} s waiting for the lock '
                                     f'{self.path} held by '
                                     'another process') from None
                time.sleep(0.05)

    def _still_at_path(self, fd):
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)

    def __exit__(self, *exc):
        if fcntl is not None:
            _remove_quietly(self.path)  # still holding it: waiters notice and open it anew
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        if fcntl is None:
            _remove_quietly(self.path)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:  # already gone, or (Windows) still open in another process
        pass


def find_verified(file_name: str, sha1: str, folders: Sequence[str], move_bad: bool = False
                  ) -> tuple[str | None, list[str]]:
    """Path of `file_name` in the first folder where its sha1 matches, else None.

    With move_bad (only under the file's lock), a mismatching copy in the first folder (our
    cache) is quarantined; otherwise, and in other folders (not ours to move), it is only
    skipped. Returns (path or None, notes on skipped copies).
    """
    notes = []
    for index, folder in enumerate(folders):
        path = os.path.join(folder, file_name)
        if not os.path.isfile(path):
            continue
        actual = sha1_of(path)
        if actual == sha1:
            return path, notes
        why = f'sha1 {actual} does not match the expected {sha1}'
        if index == 0 and move_bad:
            notes.append(f'{path} ({why}) was moved to {quarantine(path, why)}')
        else:
            notes.append(f'{path} was skipped: {why}')
    return None, notes


def fetch(file_name: str, sha1: str, kind: str, root: str | None = None, repo: str | None = None,
          retries: int = 3, retry_wait: float = 1.0, timeout: float = 60.0,
          search_gluonnlp_cache: bool = True) -> str:
    """Return the local path of a verified `file_name` (kind 'params' or 'vocab').

    Looks in the cache folder (and GluonNLP's), then downloads `{repo}/{layout}` from `repo`
    or $GLUONBERT_REPO, retrying up to `retries` times. Raises StoreError naming the file, the
    folders searched and the ways to provide it.
    """
    root = default_root(root)
    folders = [root]
    if search_gluonnlp_cache and gluonnlp_cache() != root:
        folders.append(gluonnlp_cache())
    path, _ = find_verified(file_name, sha1, folders)
    if path:
        return path
    repo = repo or os.environ.get(REPO_ENV)
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, file_name)
    with FileLock(os.path.join(root, '.' + file_name + '.lock')):
        # Under the lock: another process may have installed it meanwhile; a bad copy is ours
        # to move aside now.
        path, notes = find_verified(file_name, sha1, folders, move_bad=True)
        if path:
            return path
        if not repo:
            raise StoreError(_not_found_message(file_name, sha1, kind, folders, notes))
        url = repo.rstrip('/') + '/' + URL_LAYOUT[kind].format(file_name=file_name)
        more = []
        errors = []
        for attempt in range(retries):
            try:
                _download_verified(url, file_name, sha1, target, timeout)
                LOG.info('downloaded and verified %s', target)
                return target
            except _RetryableError as err:
                errors.append(f'attempt {attempt + 1}: {err}')
                if attempt + 1 < retries:
                    time.sleep(retry_wait * 2 ** attempt)
    raise StoreError('could not fetch {} from {} ({} attempts):\n  {}\n{}'.format(
        file_name, url, retries, '\n  '.join(notes + more + errors),
        _ways_to_provide(file_name, kind, folders)))


def _download_verified(url, file_name, sha1, target, timeout):
    folder = os.path.dirname(target)
    # scratch space for the archive, never published; the member goes through atomic_open
    zip_fd, zip_path = tempfile.mkstemp(dir=folder, prefix='.' + file_name, suffix='.zip.part')
    try:
        with os.fdopen(zip_fd, 'wb') as out:
            received, expected = _download(url, out, timeout)
        if expected is not None and received != expected:
            raise _RetryableError(f'truncated download: {received} of {expected} bytes')
        digest = hashlib.sha1()
        with atomic_open(target, 'wb') as out:  # in place only once the checksum matched
            try:
                with zipfile.ZipFile(zip_path) as archive:
                    if file_name not in archive.namelist():
                        raise _RetryableError('{} does not contain {} (it has: {})'.format(
                            url, file_name, ', '.join(archive.namelist())))
                    with archive.open(file_name) as member:
                        for chunk in iter(lambda: member.read(_CHUNK), b''):
                            digest.update(chunk)
                            out.write(chunk)
            except (zipfile.BadZipFile, EOFError) as err:
                raise _RetryableError(f'{url} is not a complete zip archive (truncated or '
                                      f'corrupt: {err})') from None
            if digest.hexdigest() != sha1:
                raise _RetryableError(f'downloaded {file_name} has sha1 {digest.hexdigest()}, '
                                      f'expected {sha1}; it was discarded')
    finally:
        if os.path.exists(zip_path):
            os.remove(zip_path)


def _download(url, out, timeout):
    """Stream `url` into the open file `out` -> (bytes received, Content-Length or None)."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code in (404, 403, 410):
            raise StoreError(f'{url} answered {err.code} {err.reason}: the mirror does not have '
                             f'this file') from None
        raise _RetryableError(f'{url} answered {err.code} {err.reason}') from None
    except (urllib.error.URLError, OSError) as err:
        raise _RetryableError(f'cannot reach {url}: {err}') from None
    with response:
        length = response.headers.get('Content-Length')
        received = 0
        while True:
            try:
                chunk = response.read(_CHUNK)
            except Exception as err:  # http.client.IncompleteRead, timeouts, resets
                raise _RetryableError(f'connection broke after {received} bytes: {err!r}') from None
            if not chunk:
                break
            out.write(chunk)  # a local write error (disk full) propagates as itself
            received += len(chunk)
    return received, None if length is None else int(length)


def _ways_to_provide(file_name, kind, folders):
    return ('Ways to provide it:\n'
            '  - copy GluonNLP 0.10\'s {name} (unchanged) into {root}\n'
            '  - set {env} to a mirror of GluonNLP\'s layout (the file is fetched from '
            '$' + REPO_ENV + '/{layout})\n'
            '  - or convert a checkpoint you have (scripts/convert_checkpoint.py) and load it '
            'with get_model(..., pretrained="path")').format(
                name=file_name, root=folders[0], env=REPO_ENV,
                layout=URL_LAYOUT[kind].format(file_name=file_name))


def _not_found_message(file_name, sha1, kind, folders, notes):
    lines = [f'pretrained file {file_name} (sha1 {sha1}) is not available offline.',
             'Searched: {}'.format(', '.join(folders))]
    lines += notes
    lines.append(f'{REPO_ENV} is not set, so nothing was downloaded.')
    return '\n'.join(lines) + '\n' + _ways_to_provide(file_name, kind, folders)
