"""HuggingFace checkpoints converted once into the store's native `.params`, then reused.

The converted `.params` is written to a temp file and renamed into place; its sha1 (and, when
kept, the sha1 of a copy of the checkpoint's vocab.txt) is recorded in a small JSON manifest
`{model}_{dataset}.json` beside it, written last, so it only ever names complete files. The
manifest also records fields identifying the source (`identity`): a manifest from another
source (another package version, another Hub revision) is converted again.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

from ..convert.common import Checkpoint, ConversionError, check_vocab_fits
from ..convert.hf import read_hf_checkpoint
from ..convert.native import read_params, save_params
from ..data.vocab import BERTVocab
from ..files import write_json, write_named_by_content
from .download import FileLock, default_root, quarantine, sha1_of

MANIFEST_VERSION = 1


def manifest_path(model: str, dataset: str, root: str) -> str:
    """Where the store records the converted file's name and sha1."""
    return os.path.join(root, f'{model}_{dataset}.json')


def _intact(root, manifest, name_key, sha1_key, manifest_file, move_bad):
    """True if the file the manifest names under name_key has the sha1 under sha1_key."""
    path = os.path.join(root, manifest[name_key])
    if not os.path.isfile(path):
        return False
    actual = sha1_of(path)
    if actual != manifest[sha1_key]:
        if move_bad:
            quarantine(path, f'sha1 {actual} does not match {manifest[sha1_key]} recorded in '
                             f'{manifest_file}')
        return False
    return True


def valid_manifest(model: str, dataset: str, identity: dict, root: str,
                   move_bad: bool = False) -> dict | None:
    """The manifest if it names intact converted files from this source, else None.
    move_bad (only under the lock): quarantine a damaged manifest or converted file."""
    path = manifest_path(model, dataset, root)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
        same_source = manifest.get('version') == MANIFEST_VERSION and all(
            manifest[key] == value for key, value in identity.items())
        names = [('file', 'sha1')] + ([('vocab_file', 'vocab_sha1')] if 'vocab_file' in manifest
                                      else [])
        if not all(isinstance(manifest[key], str) for pair in names for key in pair):
            raise TypeError('file names and sha1s must be strings')
    except (OSError, ValueError, KeyError, TypeError):
        if move_bad:
            quarantine(path, 'unreadable manifest')
        return None
    if not same_source:
        return None  # converted from another source: convert again
    if not all(_intact(root, manifest, name_key, sha1_key, path, move_bad)
               for name_key, sha1_key in names):
        return None
    return manifest


def _install(root, prefix, suffix, writer):
    """Write a file into root atomically as {prefix}-{sha1[:8]}{suffix} -> (name, sha1)."""
    digest = {}

    def name_of(temp):
        digest['sha1'] = sha1_of(temp)
        return f"{prefix}-{digest['sha1'][:8]}{suffix}"
    name = write_named_by_content(root, prefix, writer, name_of)
    return name, digest['sha1']


def _convert(model, dataset, identity, folder, root, description, keep_vocab):
    checkpoint = read_hf_checkpoint(folder)
    file_name, sha1 = _install(root, f'{model}_{dataset}', '.params',
                               lambda temp: save_params(checkpoint.arrays, temp))
    manifest = dict(version=MANIFEST_VERSION, file=file_name, sha1=sha1, source=description,
                    hparams=checkpoint.hparams, **identity)
    if keep_vocab:
        manifest['vocab_file'], manifest['vocab_sha1'] = _install(
            root, f'{model}_{dataset}', '.vocab.txt',
            lambda temp: shutil.copyfile(os.path.join(folder, 'vocab.txt'), temp))
    write_json(manifest_path(model, dataset, root), manifest)
    return manifest


def converted_params_file(model: str, dataset: str, identity: dict,
                          hf_folder: Callable[[], str], root: str | None = None,
                          description: str = '', keep_vocab: bool = False) -> tuple[str, dict]:
    """(path of the converted, verified `.params`, manifest) of a HuggingFace checkpoint.

    identity: manifest fields naming the source; a manifest with other values is converted
    again. hf_folder: returns the (verified) HuggingFace folder; called only to convert, so a
    converted checkpoint loads without it. keep_vocab: also keep a copy of its vocab.txt.
    """
    root = default_root(root)
    manifest = valid_manifest(model, dataset, identity, root)
    if manifest is None:
        os.makedirs(root, exist_ok=True)
        # downloaded before the lock (huggingface_hub locks its own cache): a slow download
        # must not time out other processes waiting to load the same model
        folder = hf_folder()
        with FileLock(os.path.join(root, f'.{model}_{dataset}.lock')):
            manifest = valid_manifest(model, dataset, identity, root, move_bad=True)
            if manifest is None:
                manifest = _convert(model, dataset, identity, folder, root, description,
                                    keep_vocab)
    return os.path.join(root, manifest['file']), manifest


def load_converted(path: str, manifest: dict, vocab: BERTVocab | None = None,
                   root: str | None = None) -> Checkpoint:
    """Checkpoint of a converted `.params`; vocab defaults to the manifest's kept vocab.txt."""
    if 'vocab_file' in manifest:
        own = BERTVocab.from_file(os.path.join(default_root(root), manifest['vocab_file']))
        if vocab is None:
            vocab = own
        elif list(vocab.idx_to_token) != list(own.idx_to_token):
            moved = sum(a != b for a, b in zip(vocab.idx_to_token, own.idx_to_token))
            raise ConversionError(
                f'{path}: its embedding rows follow the token order of its own vocab.txt '
                f'({manifest["vocab_file"]}), and the vocabulary given orders {moved} of '
                f'{len(own)} tokens differently; leave vocab= out to use the checkpoint\'s own '
                f'(GluonNLP and Google order the same tokens differently)')
    arrays = read_params(path)
    check_vocab_fits(vocab, arrays, manifest['hparams'].get('vocab_size'), path)
    return Checkpoint(arrays=arrays, hparams=manifest['hparams'], vocab=vocab, source=path)
