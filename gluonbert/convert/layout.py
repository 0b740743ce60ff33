"""Canonical checkpoint names <-> the structural names of gluonbert's blocks.

BERTModel's own names are the canonical ones. A task model (BERTClassifier, BERTForQA, ...)
holds its backbone under `bert.` and its output layer under its own attribute, which the
canonical layout calls `task.`.
"""
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..model.bert import BERTModel
from ..model.config import BERTConfig
from ..model.encoder import BERTEncoder
from ..model.task_heads import (BERTClassifier, BERTForMultipleChoice, BERTForQA,
                                BERTForTokenClassification, BERTRegression)
from .common import Checkpoint, ConversionError, assign_parameters

# block class -> (attribute of its output layer, task kind)
TASK_BLOCKS = {
    BERTClassifier: ('classifier', 'sequence_classification'),
    BERTRegression: ('regression', 'sequence_classification'),
    BERTForTokenClassification: ('classifier', 'token_classification'),
    BERTForQA: ('span', 'question_answering'),
    BERTForMultipleChoice: ('scorer', 'multiple_choice'),
}


def task_of(block: HybridBlock) -> tuple[str, str] | tuple[None, None]:
    """(output-layer attribute, task kind) of a task block, or (None, None) for a BERTModel."""
    for cls, info in TASK_BLOCKS.items():
        if type(block) is cls:
            return info
    if isinstance(block, BERTModel):
        return None, None
    raise TypeError('cannot map checkpoints onto a {}; use a BERTModel or one of {}'.format(
        type(block).__name__, ', '.join(c.__name__ for c in TASK_BLOCKS)))


def backbone_of(block: HybridBlock) -> BERTModel:
    """The BERTModel inside `block` (the block itself for a BERTModel)."""
    return block if isinstance(block, BERTModel) else block.bert


def block_to_canonical(block: HybridBlock) -> tuple[dict[str, np.ndarray], str | None]:
    """Parameters of `block` -> (canonical name -> numpy array, task kind or None)."""
    attr, task = task_of(block)
    arrays = {}
    for name, param in block._collect_params_with_prefix().items():
        value = param.data().asnumpy()
        if attr is None:
            arrays[name] = value
        elif name.startswith('bert.'):
            arrays[name[len('bert.'):]] = value
        elif name.startswith(attr + '.'):
            arrays['task.' + name[len(attr) + 1:]] = value
        else:
            raise ConversionError(f'{type(block).__name__} has a parameter {name} outside its '
                                  'backbone and output layer')
    return arrays, task


def canonical_to_block(block: HybridBlock, arrays: Mapping[str, np.ndarray],
                       checkpoint_task: str | None = None) -> dict[str, np.ndarray]:
    """Canonical arrays -> the structural names of `block`; a task-kind mismatch is an error."""
    attr, task = task_of(block)
    if attr is None:
        return dict(arrays)
    if checkpoint_task is not None and checkpoint_task != task:
        raise ConversionError(f'the checkpoint holds a {checkpoint_task} head but '
                              f'{type(block).__name__} is a {task} model')
    return {(attr + name[len('task'):] if name.startswith('task.') else 'bert.' + name): value
            for name, value in arrays.items()}


# fields the weights themselves show: (canonical tensor, axis of its shape)
FIELDS_IN_WEIGHTS = {'vocab_size': ('encoder.word_embed.weight', 0),
                     'units': ('encoder.word_embed.weight', 1),
                     'max_length': ('encoder.position_weight', 0),
                     'token_type_vocab_size': ('encoder.token_type_embed.weight', 0)}


def check_hparams(model_config: BERTConfig, checkpoint_hparams: Mapping[str, Any],
                  source: str = '', arrays: Mapping[str, np.ndarray] | None = None) -> None:
    """Raise ConversionError listing every architecture field (BERTConfig.architecture_fields)
    where the checkpoint's configuration (a dict, possibly partial) and the model's BERTConfig
    differ, saying what each side (and the weights) say."""
    diffs = []
    for f in BERTConfig.architecture_fields():
        if f in checkpoint_hparams and checkpoint_hparams[f] != model_config[f]:
            line = (f"{f}: the checkpoint's configuration says {checkpoint_hparams[f]!r}, "
                    f'the model has {model_config[f]!r}')
            tensor, axis = FIELDS_IN_WEIGHTS.get(f, (None, None))
            if arrays is not None and tensor in arrays:
                line += f', the weights ({tensor}) are {arrays[tensor].shape[axis]}'
            diffs.append(line)
    if diffs:
        raise ConversionError('{} disagrees with the model being built (the configuration file '
                              'beside the weights, e.g. config.json, names the checkpoint\'s '
                              'architecture):\n  {}'.format(source or 'the checkpoint',
                                                            '\n  '.join(diffs)))


def load_into(block: HybridBlock, checkpoint: Checkpoint, allow_missing: bool = False,
              allow_unexpected: bool = False, ignore_heads: Iterable[str] = ()
              ) -> tuple[list[str], list[str]]:
    """Load a Checkpoint into an initialized BERTModel or task model, strictly.

    ignore_heads: head groups ('pooler', 'classifier', 'decoder', 'task') to drop from the
    checkpoint on purpose. Everything else must match by name and shape unless allowed.
    Returns (missing, unexpected) structural names.
    """
    check_hparams(backbone_of(block).config, checkpoint.hparams, checkpoint.source,
                  checkpoint.arrays)
    arrays = canonical_to_block(block, checkpoint.without(ignore_heads), checkpoint.task)
    return assign_parameters(block, arrays, allow_missing, allow_unexpected, checkpoint.source)


def resolve_heads(present: Collection[str], use_pooler: bool | None = None,
                  use_decoder: bool | None = None, use_classifier: bool | None = None
                  ) -> tuple[dict[str, bool], set[str]]:
    """Which heads a BERTModel gets and which checkpoint head groups are dropped on purpose.

    A flag left at None follows the checkpoint (a head it has is built and loaded, one it lacks
    is left out); True or False is obeyed, and a head asked for but absent is reported missing.
    Returns ({'use_pooler': .., 'use_decoder': .., 'use_classifier': ..}, ignored head groups).
    """
    flags = {}
    for head, flag in (('pooler', use_pooler), ('decoder', use_decoder),
                       ('classifier', use_classifier)):
        flags[head] = head in present if flag is None else bool(flag)
    if use_classifier is None and use_pooler is False:
        flags['classifier'] = False  # no pooler, so no next-sentence classifier on top of it
    if flags['classifier'] and use_pooler is None:
        flags['pooler'] = True  # the next-sentence classifier reads the pooled output
    ignored = {head for head in ('pooler', 'decoder', 'classifier', 'task')
               if head in present and not flags.get(head, False)}
    return {'use_' + head: value for head, value in flags.items()}, ignored


def _encoder(checkpoint, overrides):
    if not checkpoint.hparams:
        raise ConversionError(f'{checkpoint.source} carries no hyperparameters; build the model '
                              'yourself (e.g. get_model(name, pretrained=path)) and use load_into')
    changed = sorted(set(overrides) & set(BERTConfig.architecture_fields()))
    if changed:
        raise ConversionError(f'cannot override architecture field(s) {changed} of a checkpoint')
    return BERTEncoder(BERTConfig.from_dict(checkpoint.hparams).replace(**overrides))


def model_from_checkpoint(checkpoint: Checkpoint, use_pooler: bool | None = None,
                          use_decoder: bool | None = None, use_classifier: bool | None = None,
                          ctx: mx.Context | list[mx.Context] | None = None,
                          allow_missing: bool = False, allow_unexpected: bool = False,
                          **overrides: Any) -> BERTModel:
    """Build a BERTModel with the checkpoint's own hyperparameters and load it strictly.

    Head flags as in `resolve_heads`; overrides change non-architecture settings such as
    dropout=0.0.
    """
    flags, ignored = resolve_heads(checkpoint.heads, use_pooler, use_decoder, use_classifier)
    model = BERTModel(_encoder(checkpoint, overrides), **flags)
    model.initialize(ctx=ctx or mx.cpu())
    load_into(model, checkpoint, allow_missing, allow_unexpected, ignore_heads=ignored)
    return model


def block_from_checkpoint(checkpoint: Checkpoint, allow_missing: bool = False,
                          allow_unexpected: bool = False,
                          ctx: mx.Context | list[mx.Context] | None = None,
                          **overrides: Any) -> HybridBlock:
    """The block a checkpoint describes: a task model for a fine-tuned head, else a BERTModel
    with the heads it has; built from its hyperparameters and loaded strictly."""
    if checkpoint.task is None:
        if 'task' in checkpoint.heads:
            raise ConversionError(f'{checkpoint.source} has a task output layer but does not say '
                                  'which task it solves (e.g. config.json "architectures")')
        return model_from_checkpoint(checkpoint, ctx=ctx, allow_missing=allow_missing,
                                     allow_unexpected=allow_unexpected, **overrides)
    labels = checkpoint.task_labels
    sentence_head = checkpoint.task in ('sequence_classification', 'multiple_choice')
    uses_pooler = sentence_head and checkpoint.pooling == 'cls'
    backbone = BERTModel(_encoder(checkpoint, overrides), use_pooler=uses_pooler,
                         use_decoder=False, use_classifier=False)
    pooling = dict(pooling=checkpoint.pooling) if sentence_head else {}
    if checkpoint.task == 'sequence_classification':
        block = BERTRegression(backbone, **pooling) if labels == 1 else \
            BERTClassifier(backbone, labels, **pooling)
    elif checkpoint.task == 'token_classification':
        block = BERTForTokenClassification(backbone, labels)
    elif checkpoint.task == 'question_answering':
        block = BERTForQA(backbone)
    else:
        block = BERTForMultipleChoice(backbone, **pooling)
    block.initialize(ctx=ctx or mx.cpu())
    ignored = {'decoder', 'classifier'} | ({'pooler'} if not uses_pooler else set())
    load_into(block, checkpoint, allow_missing, allow_unexpected,
              ignore_heads=ignored & checkpoint.heads)
    return block
