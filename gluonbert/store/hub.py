"""BERT checkpoints from the HuggingFace Hub, or from a Hub mirror named by $HF_ENDPOINT.

Files are downloaded with huggingface_hub's `hf_hub_download` into its cache (`root`, else
$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), then verified against the
Hub's own checksum of the file (the ETag that names the cached blob: the sha256 of an LFS file,
the git sha1 of a small one) and against any sha256 pinned by the caller. HF_ENDPOINT,
HF_HUB_CACHE/HF_HOME and HF_HUB_OFFLINE are read at each call: huggingface_hub reads them once,
when imported, so its offline flag is set from the environment before each download.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import huggingface_hub
from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors

from ..convert.common import Checkpoint
from ..convert.hf import config_to_hparams, read_config
from ..data.vocab import BERTVocab
from .converted import converted_params_file, load_converted
from .download import StoreError
from .facts import HubSource

DEFAULT_ENDPOINT = 'https://huggingface.co'
TEXT_FILES = ('config.json', 'vocab.txt')
WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')  # the first one a revision has
_SPEC = re.compile(r'hf:(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^@\s]+))?')
_SHA256 = re.compile(r'[0-9a-f]{64}')
_GIT_SHA1 = re.compile(r'[0-9a-f]{40}')
_CHUNK = 1 << 20


class _NotOnHub(StoreError):
    """The revision exists but does not have this file."""


def hub_endpoint() -> str:
    """The Hub to download from: $HF_ENDPOINT, else https://huggingface.co."""
    return (os.environ.get('HF_ENDPOINT') or DEFAULT_ENDPOINT).rstrip('/')


def hub_cache(root: str | None = None) -> str:
    """huggingface_hub's cache folder: root, else $HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub."""
    if root is None:
        root = os.environ.get('HF_HUB_CACHE') or os.path.join(
            os.environ.get('HF_HOME') or os.path.join('~', '.cache', 'huggingface'), 'hub')
    return os.path.abspath(os.path.expanduser(str(root)))


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids downloads."""
    value = os.environ.get('HF_HUB_OFFLINE') or os.environ.get('TRANSFORMERS_OFFLINE') or ''
    return value.strip().lower() in ('1', 'on', 'yes', 'true')


def parse_hf_spec(spec: str) -> tuple[str, str]:
    """'hf:ORG/NAME[@REVISION]' -> (repo, revision); the revision defaults to 'main'."""
    match = _SPEC.fullmatch(str(spec).strip())
    if not match:
        raise ValueError(f'{spec!r} is not a HuggingFace Hub checkpoint name; write '
                         f'hf:ORG/NAME or hf:ORG/NAME@REVISION (a branch, tag or commit)')
    return match.group('repo'), match.group('revision') or 'main'


def download_command(repo: str, revision: str, cache: str,
                     files: Sequence[str] = TEXT_FILES + WEIGHT_FILES[:1]) -> str:
    """The shell command that puts a checkpoint's files into the cache."""
    prefix = 'HF_HUB_OFFLINE=0 ' if hub_offline() else ''
    if hub_endpoint() != DEFAULT_ENDPOINT:
        prefix += f'HF_ENDPOINT={hub_endpoint()} '
    return (f'{prefix}hf download {repo} {" ".join(files)} --revision {revision} '
            f'--cache-dir {cache}')


def _file_digests(path):
    """(sha256, git blob sha1) of a file, in one pass."""
    sha256, git = hashlib.sha256(), hashlib.sha1()
    git.update(f'blob {os.path.getsize(path)}\0'.encode())
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            sha256.update(chunk)
            git.update(chunk)
    return sha256.hexdigest(), git.hexdigest()


def verify_hub_file(path: str, what: str, pinned_sha256: str | None = None) -> None:
    """Check a cached file against the Hub's ETag (its blob's name) and a pinned sha256.

    A mismatching file is removed from the cache (blob and snapshot link), so the next call
    downloads it again, and StoreError says so.
    """
    blob = os.path.realpath(path)
    etag = os.path.basename(blob)
    sha256, git_sha1 = _file_digests(blob)
    problems = []
    if _SHA256.fullmatch(etag) and sha256 != etag:
        problems.append(f'its sha256 is {sha256} but the Hub published {etag}')
    elif _GIT_SHA1.fullmatch(etag) and git_sha1 != etag:
        problems.append(f'its git sha1 is {git_sha1} but the Hub published {etag}')
    if pinned_sha256 is not None and sha256 != pinned_sha256:
        problems.append(f'its sha256 is {sha256} but gluonbert pins {pinned_sha256}')
    if problems:
        for damaged in {blob, path}:
            if os.path.lexists(damaged):
                os.remove(damaged)
        raise StoreError(f'{what} ({blob}) is damaged: {"; ".join(problems)}; it was removed '
                         f'from the cache, so the next call downloads it again')


def fetch_hub_file(repo: str, revision: str, name: str, cache: str | None = None,
                   pinned_sha256: str | None = None) -> str:
    """Local path of one verified file of `repo` at `revision`, downloaded if not cached."""
    cache = hub_cache(cache)
    endpoint = hub_endpoint()
    what = f'{name} of {repo}@{revision}'
    hub_constants.HF_HUB_OFFLINE = hub_offline()  # what its request filter checks
    try:
        path = huggingface_hub.hf_hub_download(
            repo, name, revision=revision, cache_dir=cache, endpoint=endpoint,
            local_files_only=hub_offline())
    except hub_errors.LocalEntryNotFoundError as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        why = (f'HF_HUB_OFFLINE=1 forbids downloading it from {endpoint}' if hub_offline()
               else f'downloading it from {endpoint} failed ({type(cause).__name__}: '
                    f'{str(cause).strip().splitlines()[0] if str(cause).strip() else "no answer"})')
        raise StoreError(f'{what} is not in the HuggingFace cache {cache} and {why}; fix: '
                         f'{download_command(repo, revision, cache)}') from None
    except hub_errors.RemoteEntryNotFoundError:
        raise _NotOnHub(f'{endpoint} has no {name} in {repo}@{revision}') from None
    except hub_errors.RevisionNotFoundError:
        raise StoreError(f'{endpoint} has no revision {revision!r} of {repo}; use a branch, '
                         f'tag or commit of that repository') from None
    except hub_errors.RepositoryNotFoundError:
        raise StoreError(f'{endpoint} has no repository {repo} (or it is private or gated: '
                         f'log in with `hf auth login`)') from None
    except (hub_errors.HfHubHTTPError, OSError) as err:  # other answers; size mismatch
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StoreError(f'could not download {what} from {endpoint}: {first}') from None
    verify_hub_file(path, what, pinned_sha256)
    return path


def _cached_weights(repo, revision, cache):
    """The weight files of this revision already in the cache, in WEIGHT_FILES order."""
    return [name for name in WEIGHT_FILES if isinstance(huggingface_hub.try_to_load_from_cache(
        repo, name, cache_dir=cache, revision=revision), str)]


def fetch_hub_checkpoint(repo: str, revision: str = 'main', cache: str | None = None,
                         sha256: dict[str, str] | None = None) -> str:
    """Local folder holding a BERT checkpoint's config.json, vocab.txt and weights (verified).

    config.json is fetched first and must describe a BERT (else ConversionError, before any
    weights are downloaded). Weights: model.safetensors, else pytorch_model.bin (reading it
    needs torch). sha256: optional pins, file name -> sha256.
    """
    cache = hub_cache(cache)
    sha256 = sha256 or {}
    config_path = fetch_hub_file(repo, revision, 'config.json', cache, sha256.get('config.json'))
    config_to_hparams(read_config(config_path), f'hf:{repo}@{revision} config.json')
    paths = [config_path, fetch_hub_file(repo, revision, 'vocab.txt', cache,
                                         sha256.get('vocab.txt'))]
    for name in _cached_weights(repo, revision, cache)[:1] or WEIGHT_FILES:
        try:
            paths.append(fetch_hub_file(repo, revision, name, cache, sha256.get(name)))
            break
        except _NotOnHub:
            continue
    else:
        raise StoreError(f'{repo}@{revision} on {hub_endpoint()} has no weights gluonbert '
                         f'reads: none of {", ".join(WEIGHT_FILES)}')
    folders = {os.path.dirname(path) for path in paths}
    if len(folders) != 1:
        raise StoreError(f'{repo}@{revision} moved to another commit while its files were '
                         f'downloaded; try again, or pin a commit (hf:{repo}@COMMIT)')
    return folders.pop()


def resolve_hf_spec(spec: str, root: str | None = None) -> str:
    """'hf:ORG/NAME[@REVISION]' -> a local folder with config.json, weights and vocab.txt.

    Any BERT-architecture repository of the Hub (or of $HF_ENDPOINT); a non-BERT config.json
    is refused. root: huggingface_hub's cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub or
    ~/.cache/huggingface/hub). With HF_HUB_OFFLINE=1, only cached files are used.
    """
    repo, revision = parse_hf_spec(spec)
    return fetch_hub_checkpoint(repo, revision, root)


def load_from_hub(model: str, dataset: str, source: HubSource, root: str | None = None,
                  vocab: BERTVocab | None = None) -> Checkpoint:
    """Checkpoint of a (model, dataset) pair published on the Hub (facts.HubSource).

    The first call downloads the files and converts them into the store (`root`, see
    default_root) with a copy of vocab.txt; later calls read the store and never the network.
    """
    identity = {'source_repo': source.repo, 'source_revision': source.revision}
    path, manifest = converted_params_file(
        model, dataset, identity,
        lambda: fetch_hub_checkpoint(source.repo, source.revision, sha256=source.sha256),
        root, description=f'hf:{source.repo}@{source.revision}', keep_vocab=True)
    return load_converted(path, manifest, vocab, root)


def hub_vocab(source: HubSource) -> BERTVocab:
    """The vocabulary (vocab.txt) of a Hub checkpoint, fetched alone."""
    return BERTVocab.from_file(fetch_hub_file(source.repo, source.revision, 'vocab.txt',
                                              pinned_sha256=(source.sha256 or {}).get(
                                                  'vocab.txt')))
