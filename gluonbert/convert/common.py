"""Strict assignment of converted tensors to a gluonbert block, with complete mismatch reports.

Every converter produces a `Checkpoint`: tensors under gluonbert's *canonical* names (the
structural names of `BERTModel`: `encoder.*`, `pooler.dense.*`, `classifier.dense.*` for
next-sentence prediction, `decoder.*` for the masked LM), plus `task.weight` / `task.bias` for
the output layer of a fine-tuned task model, whose kind is named by `Checkpoint.task`.
"""
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mxnet.gluon import HybridBlock

from ..data.vocab import BERTVocab

# Groups of canonical names a BERTModel may or may not have; the encoder is always required.
HEAD_PREFIXES = {'pooler': 'pooler.', 'classifier': 'classifier.', 'decoder': 'decoder.',
                 'task': 'task.'}


class ConversionError(ValueError):
    """A checkpoint does not fit the model: names every missing, unexpected or mis-shaped tensor."""


@dataclass
class Checkpoint:
    """A converted checkpoint: canonical tensors, the source's hyperparameters and vocabulary."""
    arrays: dict[str, np.ndarray]
    hparams: dict[str, Any] = field(default_factory=dict)  # BERTConfig fields; {} if unknown
    vocab: BERTVocab | None = None  # None when the source ships none
    source: str = ''
    task: str | None = None  # the task head's kind, e.g. 'sequence_classification', if `task.*`
    task_labels: int | None = None  # outputs of the task head
    pooling: str = 'cls'  # sentence heads: what feeds the task layer, 'cls' (pooler) or 'mean'
    labels: list[str] | None = None  # names of the task head's outputs (HF id2label), if known
    head_dropout: float | None = None  # dropout before the task layer, if the source says

    @property
    def heads(self) -> set[str]:
        """The optional parts present: a subset of {'pooler', 'classifier', 'decoder', 'task'}."""
        return {head for head, prefix in HEAD_PREFIXES.items()
                if any(name.startswith(prefix) for name in self.arrays)}

    def without(self, heads: Iterable[str], warn: bool = True) -> dict[str, np.ndarray]:
        """The canonical arrays minus every tensor of the named head groups.

        Dropping a fine-tuned task head (e.g. `get_model(pretrained=<a classifier folder>)`,
        which builds a bare BERTModel) is allowed, to fine-tune the backbone anew, but warned
        about: the caller may have meant to load the whole fine-tuned model.
        """
        if warn and 'task' in heads and 'task' in self.heads:
            warnings.warn(
                f'{self.source or "the checkpoint"} holds a fine-tuned {self.task or "task"} '
                f'head ({self.task_labels} outputs{_label_list(self.labels)}), which is dropped: '
                'only the backbone is loaded. To load the whole fine-tuned model use '
                'gluonbert.from_pretrained(path)', UserWarning, stacklevel=4)
        prefixes = tuple(HEAD_PREFIXES[h] for h in heads)
        return {k: v for k, v in self.arrays.items() if not (prefixes and k.startswith(prefixes))}


def _label_list(labels):
    """': a, b' for named outputs; '' for none or HF's defaults (LABEL_0, LABEL_1, ...)."""
    if not labels or list(labels) == [f'LABEL_{i}' for i in range(len(labels))]:
        return ''
    return f': {", ".join(map(str, labels))}'


def assign_parameters(block: HybridBlock, arrays: Mapping[str, np.ndarray],
                      allow_missing: bool = False, allow_unexpected: bool = False,
                      source: str = '') -> tuple[list[str], list[str]]:
    """Copy `arrays` (structural name -> numpy array) into `block`'s initialized parameters.

    Every problem is collected before anything is written, so a failed load leaves the block
    untouched. Missing or unexpected tensors are errors unless explicitly allowed.
    Returns (missing, unexpected) name lists.
    """
    params = block._collect_params_with_prefix()
    missing = sorted(set(params) - set(arrays))
    unexpected = sorted(set(arrays) - set(params))
    problems = []
    for name in sorted(set(params) & set(arrays)):
        want, got = tuple(params[name].shape), tuple(np.shape(arrays[name]))
        if want != got:
            problems.append(f'{name}: checkpoint has shape {got}, model expects {want}')
    if missing and not allow_missing:
        problems.append('missing from the checkpoint ({}): {}'.format(len(missing),
                                                                     ', '.join(missing)))
    if unexpected and not allow_unexpected:
        problems.append('not in the model ({}): {}'.format(len(unexpected),
                                                          ', '.join(unexpected)))
    if problems:
        where = f' from {source}' if source else ''
        raise ConversionError(f'cannot load parameters{where}:\n  ' +
                              '\n  '.join(problems))
    for name, param in params.items():
        if name in arrays:
            param.set_data(np.asarray(arrays[name], dtype=param.dtype))
    return missing, unexpected


def check_vocab_fits(vocab: BERTVocab | None, arrays: Mapping[str, np.ndarray],
                     declared_size: int | None = None, source: str = '') -> None:
    """Raise ConversionError unless the vocabulary, the embedding rows and the config agree."""
    embed = arrays.get('encoder.word_embed.weight')
    rows = None if embed is None else np.shape(embed)[0]
    sizes = [('vocabulary', None if vocab is None else len(vocab)), ('word embedding', rows),
             ('config vocab_size', declared_size)]
    known = [(what, size) for what, size in sizes if size is not None]
    if len({size for _, size in known}) > 1:
        raise ConversionError('{}: sizes disagree: {}; the vocabulary must be the one the '
                              'checkpoint was trained with'.format(
                                  source or 'checkpoint',
                                  ', '.join(f'{w} has {s} tokens' for w, s in known)))


def checkpoint_with_vocab(arrays: dict[str, np.ndarray], hparams: dict[str, Any],
                          vocab: BERTVocab | None,
                          folder: str, source: str, task: str | None = None,
                          labels: list[str] | None = None) -> Checkpoint:
    """Finish a converted checkpoint: the given vocab, else `folder/vocab.txt` if present,
    checked against the embedding and the config -> Checkpoint (`labels`: output names)."""
    from ..data.vocab import BERTVocab
    if vocab is None:
        vocab_path = os.path.join(folder, 'vocab.txt')
        vocab = BERTVocab.from_file(vocab_path) if os.path.isfile(vocab_path) else None
    check_vocab_fits(vocab, arrays, hparams.get('vocab_size'), source)
    outputs = np.shape(arrays['task.weight'])[0] if 'task.weight' in arrays else None
    if labels is not None and len(labels) != outputs:
        raise ConversionError(f'{source}: {len(labels)} label names for a task layer with '
                              f'{outputs} outputs; the config\'s id2label must name every output')
    return Checkpoint(arrays=arrays, hparams=hparams, vocab=vocab, source=source, task=task,
                      task_labels=outputs, labels=labels)
