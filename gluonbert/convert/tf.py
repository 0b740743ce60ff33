"""Google's TensorFlow BERT checkpoints (`bert_config.json` + `bert_model.ckpt.*` + `vocab.txt`)
-> gluonbert, as released by google-research/bert and read by keras-bert.

Variables are renamed to their HuggingFace equivalents (kernels transposed to (out, in)) and
then share the HuggingFace mapping. The checkpoint is read by `tf_bundle`, without TensorFlow.
"""
import glob
import os
import re
from collections.abc import Mapping

import numpy as np

from ..data.vocab import BERTVocab
from .common import Checkpoint, ConversionError, checkpoint_with_vocab
from .hf import config_to_hparams, hf_to_canonical, read_config
from .tf_bundle import read_tf_variables

# Variables whose name does not follow the module/path pattern; (HF name, kind of task head).
_SPECIAL = {
    'cls/predictions/output_bias': ('cls.predictions.bias', None),
    'cls/seq_relationship/output_weights': ('cls.seq_relationship.weight', None),
    'cls/seq_relationship/output_bias': ('cls.seq_relationship.bias', None),
    'output_weights': ('classifier.weight', 'sequence_classification'),  # run_classifier.py
    'output_bias': ('classifier.bias', 'sequence_classification'),
    'cls/squad/output_weights': ('qa_outputs.weight', 'question_answering'),  # run_squad.py
    'cls/squad/output_bias': ('qa_outputs.bias', 'question_answering'),
}
_EMBEDDINGS = ('word_embeddings', 'token_type_embeddings', 'position_embeddings')


def is_training_state(name: str) -> bool:
    """Optimizer slots and step counters: saved by training, not part of the model."""
    return name == 'global_step' or name.endswith(('/adam_m', '/adam_v'))


def tf_to_hf_names(variables: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
    """{TF variable name: array} -> ({HF name: array}, task kind or None).

    Names outside Google's BERT layout are kept unchanged so the strict loader reports them.
    """
    out, task = {}, None
    for name, value in variables.items():
        if name in _SPECIAL:
            hf_name, kind = _SPECIAL[name]
            task = kind or task
        elif name.startswith(('bert/', 'cls/')):
            parts = [re.sub(r'^layer_(\d+)$', r'layer.\1', p) for p in name.split('/')]
            last = parts[-1]
            if last == 'kernel':
                parts[-1], value = 'weight', np.ascontiguousarray(np.transpose(value))
            elif last in _EMBEDDINGS:
                parts.append('weight')
            elif last in ('gamma', 'beta'):
                parts[-1] = 'weight' if last == 'gamma' else 'bias'
            hf_name = '.'.join(parts)
        else:
            hf_name = name
        out[hf_name] = value
    return out, task


def find_checkpoint_prefix(path: str) -> tuple[str, str]:
    """A folder or checkpoint prefix -> (prefix, folder holding bert_config.json / vocab.txt)."""
    path = str(path)
    if path.endswith('.index'):
        path = path[:-len('.index')]
    if os.path.isfile(path + '.index'):
        return path, os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        indexes = sorted(glob.glob(os.path.join(path, '*.index')))
        if len(indexes) == 1:
            return indexes[0][:-len('.index')], path
        if indexes:
            raise ConversionError('{} holds several checkpoints ({}); pass the prefix of one'
                                  .format(path, ', '.join(os.path.basename(i) for i in indexes)))
    raise ConversionError(f'no TensorFlow checkpoint (*.index) found at {path}')


def read_tf_checkpoint(path: str, vocab: BERTVocab | None = None) -> Checkpoint:
    """A Google BERT folder or checkpoint prefix -> Checkpoint (canonical names)."""
    prefix, folder = find_checkpoint_prefix(path)
    config_path = os.path.join(folder, 'bert_config.json')
    hparams = config_to_hparams(read_config(config_path), config_path)
    variables = read_tf_variables(prefix, skip=is_training_state)
    state, task = tf_to_hf_names(variables)
    task_layer = 'qa_outputs' if task == 'question_answering' else 'classifier'
    arrays = hf_to_canonical(state, hparams['num_heads'], task_layer)
    return checkpoint_with_vocab(arrays, hparams, vocab, folder, prefix, task)
