"""gluonbert's own checkpoint folder: `model.params` (canonical names, MXNet's format),
`gluonbert_config.json` (hyperparameters: BERTConfig.to_dict() under "hparams") and
`vocab.txt`."""
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..data.vocab import BERTVocab
from ..errors import mxnet_message
from ..model.config import BERTConfig
from ..files import atomic_folder, write_json, write_with
from .common import Checkpoint, ConversionError, check_vocab_fits
from .hf import tokenizer_config, tokenizer_options
from .layout import backbone_of, block_to_canonical

CONFIG_NAME = 'gluonbert_config.json'
PARAMS_NAME = 'model.params'
FORMAT_VERSION = 1


def read_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """An MXNet .params file -> {name: numpy array}; a damaged file gives ConversionError."""
    if not os.path.isfile(path):
        raise ConversionError(f'parameter file not found: {path}')
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise ConversionError(f'cannot read {path} (truncated or not an MXNet .params file): '
                              f'{mxnet_message(str(err))}'
                              ) from None
    if not isinstance(loaded, dict):
        raise ConversionError(f'{path} holds an unnamed list of arrays, not named parameters')
    return {name: value.asnumpy() for name, value in loaded.items()}


def save_params(arrays: Mapping[str, np.ndarray], path: str | os.PathLike) -> str:
    """Write {name: numpy array} as an MXNet .params file atomically; returns the path."""
    return write_with(path, lambda temp: mx.nd.save(
        temp, {name: mx.nd.array(value, dtype=np.asarray(value).dtype)
               for name, value in sorted(arrays.items())}))


def save_native_checkpoint(block: HybridBlock, vocab: BERTVocab, directory: str | os.PathLike,
                           overwrite: bool = False, labels: Sequence[str] | None = None,
                           tokenizer_settings: Mapping[str, Any] | None = None) -> None:
    """Write a BERTModel or task model as a gluonbert checkpoint folder, atomically
    (`labels`: names of a classifier's outputs, kept in the config; `tokenizer_settings`: a
    source's tokenizer_config.json, written beside the weights when given)."""
    with atomic_folder(directory, overwrite) as temp:
        write_native_files(block, vocab, temp, labels)
        if tokenizer_settings:
            write_json(os.path.join(temp, 'tokenizer_config.json'), tokenizer_config(
                vocab, tokenizer_settings.get('do_lower_case'),
                backbone_of(block).config.max_length, **tokenizer_options(tokenizer_settings)))


def write_native_files(block: HybridBlock, vocab: BERTVocab, folder: str | os.PathLike,
                       labels: Sequence[str] | None = None) -> None:
    """Write model.params, gluonbert_config.json and vocab.txt into an existing folder."""
    hparams = backbone_of(block).config.to_dict()
    arrays, task = block_to_canonical(block)
    check_vocab_fits(vocab, arrays, hparams['vocab_size'], 'the model')
    outputs = int(np.shape(arrays['task.weight'])[0]) if task else None
    if labels is not None and len(labels) != outputs:
        raise ConversionError(f'{len(labels)} label names for a head with {outputs} outputs')
    config = dict(format='gluonbert', format_version=FORMAT_VERSION, hparams=hparams, task=task,
                  task_labels=outputs, pooling=getattr(block, 'pooling', None) or 'cls',
                  labels=None if labels is None else list(labels))
    save_params(arrays, os.path.join(folder, PARAMS_NAME))
    write_json(os.path.join(folder, CONFIG_NAME), config)
    vocab.to_file(os.path.join(folder, 'vocab.txt'))


def read_native_checkpoint(directory: str | os.PathLike, vocab: BERTVocab | None = None
                           ) -> Checkpoint:
    """A gluonbert checkpoint folder -> Checkpoint."""
    path = os.path.join(directory, CONFIG_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ConversionError(f'cannot read {path}: {err}') from None
    if config.get('format') != 'gluonbert' or 'hparams' not in config:
        raise ConversionError(f'{path} is not a gluonbert checkpoint config')
    try:
        hparams = BERTConfig.from_dict(config['hparams']).to_dict()
    except (TypeError, ValueError) as err:
        raise ConversionError(f'{path}: hparams: {err}') from None
    arrays = read_params(os.path.join(directory, PARAMS_NAME))
    if vocab is None:
        vocab = BERTVocab.from_file(os.path.join(directory, 'vocab.txt'))
    check_vocab_fits(vocab, arrays, hparams['vocab_size'], directory)
    return Checkpoint(arrays=arrays, hparams=hparams, vocab=vocab, source=directory,
                      task=config.get('task'), task_labels=config.get('task_labels'),
                      pooling=config.get('pooling', 'cls'), labels=config.get('labels'))
