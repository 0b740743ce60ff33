"""GluonNLP 0.10 BERT `.params` (structural names) -> gluonbert parameter names.

Two kinds of files: a `BERTModel.save_parameters` (`word_embed.0.*`, `encoder.*`, ...) and a
fine-tuned `BERTClassifier` / `BERTRegression` of GluonNLP's `finetune_classifier.py`, whose
backbone sits under `bert.` and whose output layer is the last Dense of a HybridSequential
(`classifier.0.*`, or `classifier.1.*` behind a Dropout; `regression.*` alike).
"""
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..data.vocab import BERTVocab
from ..model.attention import interleave_qkv, split_qkv
from .common import Checkpoint, ConversionError, check_vocab_fits
from .native import read_params

# (GluonNLP structural name, gluonbert name), read both ways; {i} is a layer index and {p} a
# parameter kind. The q/k/v projections are fused (or split) separately.
_NAMES = [
    ('word_embed.0.weight', 'encoder.word_embed.weight'),
    ('token_type_embed.0.weight', 'encoder.token_type_embed.weight'),
    ('encoder.position_weight', 'encoder.position_weight'),
    ('encoder.layer_norm.{p}', 'encoder.embed_norm.{p}'),
    ('encoder.transformer_cells.{i}.proj.{p}', 'encoder.layers.{i}.attention.out_proj.{p}'),
    ('encoder.transformer_cells.{i}.layer_norm.{p}', 'encoder.layers.{i}.attention_norm.{p}'),
    ('encoder.transformer_cells.{i}.ffn.ffn_1.{p}', 'encoder.layers.{i}.ffn_1.{p}'),
    ('encoder.transformer_cells.{i}.ffn.ffn_2.{p}', 'encoder.layers.{i}.ffn_2.{p}'),
    ('encoder.transformer_cells.{i}.ffn.layer_norm.{p}', 'encoder.layers.{i}.ffn_norm.{p}'),
    ('pooler.{p}', 'pooler.dense.{p}'),
    ('classifier.{p}', 'classifier.dense.{p}'),
    ('decoder.0.{p}', 'decoder.transform.{p}'),
    ('decoder.2.{p}', 'decoder.layer_norm.{p}'),
    ('decoder.3.bias', 'decoder.bias'),
]
_FIELDS = {'i': r'(?P<i>\d+)', 'p': r'(?P<p>weight|bias|gamma|beta)'}


def _compile(template):
    """A name template ('encoder.layers.{i}.ffn_1.{p}') -> a regex with named fields."""
    pattern = re.escape(template)
    for field, group in _FIELDS.items():
        pattern = pattern.replace(re.escape('{' + field + '}'), group)
    return re.compile(pattern)


_FROM_GLUONNLP = [(_compile(theirs), ours) for theirs, ours in _NAMES]
_TO_GLUONNLP = [(_compile(ours), theirs) for theirs, ours in _NAMES]
_QKV = re.compile(r'encoder\.transformer_cells\.(\d+)\.attention_cell\.proj_(query|key|value)\.'
                  r'(weight|bias)')
_FUSED_QKV = re.compile(r'encoder\.layers\.(\d+)\.attention\.qkv\.(weight|bias)')
_TIED = 'decoder.3.weight'  # the MLM output weight, tied to word_embed.0.weight
# Output layer of GluonNLP's BERTClassifier / BERTRegression: a Dense inside a HybridSequential.
_TASK_LAYER = re.compile(r'(classifier|regression)\.(\d+)\.(weight|bias)')


def convert_gluonnlp_params(arrays: Mapping[str, np.ndarray], num_heads: int
                            ) -> dict[str, np.ndarray]:
    """GluonNLP name -> array dict  ->  gluonbert name -> array dict (q/k/v fused per layer).

    Unrecognised names are kept under their original name, so the strict loader reports them.
    """
    out, qkv = {}, {}
    for name, value in arrays.items():
        value = np.asarray(value)
        match = _QKV.fullmatch(name)
        if match:
            layer, part, kind = match.groups()
            qkv.setdefault((layer, kind), {})[part] = value
            continue
        if name == _TIED:
            embed = arrays.get('word_embed.0.weight')
            if embed is not None and not np.array_equal(np.asarray(embed), value):
                raise ConversionError(f'{name} differs from word_embed.0.weight, but gluonbert '
                                      f'ties '
                                      'the MLM output weight to the word embedding')
            continue
        out[_rename(name, _FROM_GLUONNLP) or name] = value
    for (layer, kind), parts in qkv.items():
        if set(parts) != {'query', 'key', 'value'}:
            raise ConversionError(f'layer {layer} has {sorted(parts)} {kind} projection(s) of '
                                  f'query/key/value')
        out[f'encoder.layers.{layer}.attention.qkv.{kind}'] = interleave_qkv(
            parts['query'], parts['key'], parts['value'], num_heads)
    return out


def to_gluonnlp_params(arrays: Mapping[str, np.ndarray], num_heads: int) -> dict[str, np.ndarray]:
    """gluonbert name -> array dict  ->  GluonNLP 0.10 BERTModel name -> array dict.

    The inverse of convert_gluonnlp_params: q/k/v split per layer, and the MLM output weight
    (tied to the word embedding) written out, as GluonNLP's BERTModel holds it.
    """
    out = {}
    for name, value in arrays.items():
        match = _FUSED_QKV.fullmatch(name)
        if match:
            layer, kind = match.groups()
            for part, tensor in zip(('query', 'key', 'value'), split_qkv(value, num_heads)):
                out[f'encoder.transformer_cells.{layer}.attention_cell.proj_{part}.{kind}'] = tensor
            continue
        theirs = _rename(name, _TO_GLUONNLP)
        if theirs is None:
            raise ConversionError(f'no GluonNLP name for gluonbert parameter {name}')
        out[theirs] = np.asarray(value)
    if 'decoder.3.bias' in out and 'word_embed.0.weight' in out:
        out[_TIED] = out['word_embed.0.weight']
    return out


def _rename(name, table):
    """`name` rewritten by the first (pattern, template) pair it fits; None if none fits."""
    for pattern, template in table:
        match = pattern.fullmatch(name)
        if match:
            return template.format(**match.groupdict())
    return None


def is_gluonnlp_names(names: Iterable[str]) -> bool:
    """True if parameter names look like GluonNLP 0.10's BERTModel.save_parameters output."""
    return any(n.startswith(('encoder.transformer_cells.', 'word_embed.0.')) for n in names)


def split_task_model(arrays: Mapping[str, np.ndarray], source: str = ''
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A GluonNLP BERTClassifier/BERTRegression's arrays -> (backbone arrays without `bert.`,
    {'task.weight', 'task.bias'}); (arrays, {}) for a plain BERTModel's."""
    if not any(name.startswith('bert.') for name in arrays):
        return arrays, {}
    backbone, task, others = {}, {}, []
    layers = set()
    for name, value in arrays.items():
        match = _TASK_LAYER.fullmatch(name)
        if name.startswith('bert.'):
            backbone[name[len('bert.'):]] = value
        elif match:
            layers.add(match.group(1, 2))
            task['task.' + match.group(3)] = value
        else:
            others.append(name)
    if others or len(layers) > 1 or set(task) != {'task.weight', 'task.bias'}:
        found = ', '.join(sorted(set(arrays) - set(f'bert.{n}' for n in backbone)))
        raise ConversionError(f'{source}: a fine-tuned GluonNLP model needs one output Dense '
                              '(classifier.N.weight/bias of BERTClassifier, or regression.N.* of '
                              f'BERTRegression) beside bert.*; found {found or "none"}')
    return backbone, task


def read_params_checkpoint(path: str | os.PathLike, num_heads: int | None = None,
                           vocab: BERTVocab | None = None,
                           hparams: dict[str, Any] | None = None) -> Checkpoint:
    """A `.params` file -> Checkpoint: GluonNLP 0.10's BERT names (converted) or gluonbert's own
    BERTModel.save_parameters names (already canonical). A GluonNLP BERTClassifier or
    BERTRegression file gives a 'sequence_classification' checkpoint (`task.*` arrays).

    Such files carry no configuration: `num_heads` (needed to fuse GluonNLP's q/k/v) and the
    optional `hparams` come from the model they are loaded into.
    """
    arrays = read_params(path)
    if arrays and not any('.' in name for name in arrays):
        raise ConversionError(
            f"{path} uses the legacy prefix-based names ({sorted(arrays)[0]}, ...) of Gluon's "
            f"collect_params().save; "
            'gluonbert reads the structural names written by save_parameters')
    arrays, task_arrays = split_task_model(arrays, path)
    if is_gluonnlp_names(arrays):
        if num_heads is None:
            raise ConversionError('a GluonNLP .params file carries no configuration: give '
                                  'num_heads (get_model(name, pretrained=path) does)')
        arrays = convert_gluonnlp_params(arrays, num_heads)
    elif not any(name.startswith('encoder.layers.') for name in arrays):
        raise ConversionError(f'{path} holds neither GluonNLP BERT parameters (encoder.'
                              'transformer_cells.*) nor gluonbert ones (encoder.layers.*)')
    check_vocab_fits(vocab, arrays, None, path)
    outputs = np.shape(task_arrays['task.weight'])[0] if task_arrays else None
    return Checkpoint(arrays=dict(arrays, **task_arrays), hparams=dict(hparams or {}),
                      vocab=vocab, source=path,
                      task='sequence_classification' if task_arrays else None,
                      task_labels=outputs)
