"""One model folder that gluonbert and HuggingFace both read: `save_pretrained` /
`from_pretrained` for BERTModel and every task head.

A folder written by `save_pretrained` holds
  config.json, model.safetensors   HuggingFace's model (architectures, id2label / label2id)
  vocab.txt, tokenizer_config.json HuggingFace's tokenizer, set like gluonbert's BERTTokenizer
  gluonbert.json                   gluonbert's own metadata: head class, pooling, labels, ...
  export/                          the hybridized symbol (`export_model`), its vocab and meta
                                   (`gluonbert.inference.SentenceClassifier` reads classifiers)
`from_pretrained` also reads folders written by transformers' `save_pretrained` (BertModel and
BertFor{SequenceClassification,TokenClassification,QuestionAnswering,MultipleChoice}), gluonbert
checkpoint folders, and GluonNLP 0.10 `.params` files (a BERTModel, or the BERTClassifier /
BERTRegression of its `finetune_classifier.py`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np

from .convert import detect_format, load_checkpoint
from .convert.common import ConversionError, assign_parameters
from .files import atomic_folder, write_json
from .convert.hf import (LABELLED_TASKS, check_label_names, head_dropout_rate, read_config,
                         read_tokenizer_settings, tokenizer_options,
                         tokenizer_config, vocab_looks_cased, write_hf_files)
from .convert.layout import (backbone_of, block_from_checkpoint, block_to_canonical,
                             canonical_to_block, task_of)
from .convert.native import write_native_files
from .data.tokenizer import BERTTokenizer
from .data.vocab import BERTVocab
from .export import export_model, sample_inputs
from .model.bert import BERTModel
from .model.task_heads import BERTClassifier, BERTForTokenClassification, BERTRegression
from .registry import get_hparams

META_NAME = 'gluonbert.json'
EXPORT_FOLDER = 'export'
FORMAT = 'gluonbert-pretrained'
FORMAT_VERSION = 1

SENTENCE_HEADS = {'BERTClassifier': BERTClassifier, 'BERTRegression': BERTRegression}

__all__ = ['PretrainedInfo', 'from_pretrained', 'save_pretrained']


@dataclass
class PretrainedInfo:
    """What a loaded folder says beside the weights; `from_pretrained` sets it on the block as
    `block.pretrained_info`."""
    vocab: BERTVocab
    lower: bool  # lowercase (uncased) tokenization
    strip_accents: bool | None = None  # None: accents are stripped when lowercasing (BERT's rule)
    tokenize_chinese_chars: bool = True  # CJK characters split into single-character words
    labels: list | None = None  # names of the head's outputs, in output order
    max_length: int | None = None  # the sequence length the model was fine-tuned / is meant for
    task: str | None = None  # the task's name as the user gave it, e.g. 'SST-2'
    precision: str = 'float32'
    source: str = ''
    meta: dict = field(default_factory=dict)  # gluonbert.json as read ({} without one)

    def tokenizer(self) -> BERTTokenizer:
        """A BERTTokenizer with the folder's vocabulary, casing, accents and CJK settings."""
        return BERTTokenizer(self.vocab, lower=self.lower, **self.tokenizer_options())

    def tokenizer_options(self) -> dict:
        """strip_accents and tokenize_chinese_chars, as BERTTokenizer and tokenizer_config take
        them."""
        return tokenizer_options(vars(self))


def save_pretrained(block: mx.gluon.HybridBlock, folder: str, vocab: BERTVocab | None = None,
                    labels: Sequence[str] | None = None,
                    max_length: int | None = None, task: str | None = None,
                    lower: bool | None = None, overwrite: bool = False,
                    export: bool = True, tokenizer: BERTTokenizer | None = None) -> str:
    """Write `block` (a BERTModel or a task head) as one folder HuggingFace and gluonbert load.

    vocab, labels, max_length, task, lower default to what `block.pretrained_info` says for a
    block loaded by from_pretrained. tokenizer: the BERTTokenizer the model was trained with;
    its vocabulary, casing, accent and CJK settings are written (HF's tokenizer then splits text
    as it does), unless vocab / lower say otherwise.
    vocab: the model's BERTVocab.
    labels: names of a classifier's (or token classifier's) outputs, e.g. ['negative',
    'positive'] -> config.json id2label/label2id, so HF's pipeline answers with them; a
    regression head may name its one output. max_length: the sequence length the model is
    meant for (default the position table's). task: the task's name (e.g. 'SST-2'), kept in the
    metadata. lower: uncased tokenization (default: guessed from the vocabulary's casing).
    The folder is written under a temporary name and renamed into place when complete; an
    existing folder is replaced only with overwrite=True. Returns the folder.

    A mean-pooling head (pooling='mean') has no HuggingFace equivalent (HF's BERT heads read
    the pooled [CLS]): its folder holds gluonbert's weights (model.params +
    gluonbert_config.json) instead of config.json / model.safetensors, so gluonbert loads it and
    transformers refuses it (no config.json) rather than answering differently.
    """
    if isinstance(block, tuple):
        raise TypeError('save_pretrained got a tuple; get_model() returns (model, vocab): pass '
                        'the model')
    _, kind = task_of(block)  # TypeError for blocks that are neither BERTModel nor a head
    folder = os.fspath(folder)
    info = getattr(block, 'pretrained_info', None)
    if tokenizer is not None:
        if not isinstance(tokenizer, BERTTokenizer):
            raise TypeError(f'tokenizer must be a gluonbert BERTTokenizer; got '
                            f'{type(tokenizer).__name__}')
        vocab = tokenizer.vocab if vocab is None else vocab
        lower = tokenizer.lower if lower is None else lower
    # accents and CJK: the tokenizer's, else the folder's, else BERT's defaults
    source = tokenizer if tokenizer is not None else info
    options = tokenizer_options({} if source is None else vars(source))
    if info is not None:  # a block from from_pretrained keeps what its folder said
        vocab = info.vocab if vocab is None else vocab
        labels = info.labels if labels is None else labels
        max_length = info.max_length if max_length is None else max_length
        task = info.task if task is None else task
        lower = info.lower if lower is None else lower
    if not isinstance(vocab, BERTVocab):
        raise TypeError('save_pretrained needs the model\'s vocabulary: vocab=BERTVocab(...) '
                        f'(got {type(vocab).__name__})')
    positions = backbone_of(block).config.max_length
    labels = _check_labels(block, kind, labels)
    max_length = int(max_length or positions)
    if not 2 <= max_length <= positions:
        raise ValueError(f'max_length={max_length} must be between 2 and the position table\'s '
                         f'{positions}')
    lower = (not vocab_looks_cased(vocab)) if lower is None else bool(lower)
    hf_readable = getattr(block, 'pooling', None) != 'mean'
    meta = dict(format=FORMAT, format_version=FORMAT_VERSION, block=type(block).__name__,
                task_kind=kind, task=task, labels=labels, pooling=getattr(block, 'pooling', None),
                max_length=max_length, lower=lower, **options, precision=_precision(block),
                weights='huggingface' if hf_readable else 'gluonbert',
                head_dropout=head_dropout_rate(block),
                export=f'{EXPORT_FOLDER}/model' if export else None)
    with atomic_folder(folder, overwrite) as temp:
        if hf_readable:
            write_hf_files(block, vocab, temp, labels, lower, max_length, **options)
        else:
            write_native_files(block, vocab, temp, labels)
            write_json(os.path.join(temp, 'tokenizer_config.json'),
                       tokenizer_config(vocab, lower, max_length, **options))
        write_json(os.path.join(temp, META_NAME), meta)
        if export:
            _write_export(block, vocab, os.path.join(temp, EXPORT_FOLDER), meta)
    return folder


def _check_labels(block, kind, labels):
    """Validated label names (a list) or None."""
    if labels is None:
        return None
    if kind in LABELLED_TASKS:
        return check_label_names(labels, _outputs(block))
    raise ValueError(f'{type(block).__name__} has no named outputs; labels are for '
                     'BERTClassifier, BERTRegression (one name) and BERTForTokenClassification')


def _outputs(block):
    """Number of outputs of a task head's output layer."""
    attr, _ = task_of(block)
    return int(getattr(block, attr).weight.shape[0])


def _precision(block):
    """The parameters' dtype name ('float32'), or 'mixed'."""
    dtypes = {np.dtype(p.dtype).name for p in block.collect_params().values()}
    return dtypes.pop() if len(dtypes) == 1 else 'mixed'


def _write_export(block, vocab, folder, meta):
    """export/model-symbol.json + params, vocab.txt and meta.json (SentenceClassifier's)."""
    ctx = next(iter(block.collect_params().values())).list_ctx()[0]  # where the weights live
    inputs = list(sample_inputs(len(vocab), batch_size=2, seq_len=min(8, meta['max_length']),
                                ctx=ctx))
    if meta['block'] == 'BERTForMultipleChoice':  # (batch, num_choices, seq_len)
        inputs = [inputs[0].reshape((1, 2, -1)), inputs[1].reshape((1, 2, -1)),
                  inputs[2].reshape((1, 2))]
    if isinstance(block, BERTModel) and block.use_decoder:
        inputs.append(mx.nd.zeros((2, 1)))  # masked_positions (batch, num_masked)
    was_hybridized = block._active
    try:
        export_model(block, os.path.join(folder, 'model'), inputs)
    finally:
        if not was_hybridized:  # leave the caller's block as it was
            block.hybridize(active=False)
    vocab.to_file(os.path.join(folder, 'vocab.txt'))
    write_json(os.path.join(folder, 'meta.json'),
               dict(task=meta['task'], labels=meta['labels'],
                    regression=meta['block'] == 'BERTRegression', max_len=meta['max_length'],
                    lower=meta['lower'], strip_accents=meta['strip_accents'],
                    tokenize_chinese_chars=meta['tokenize_chinese_chars'], block=meta['block'],
                    num_inputs=len(inputs)))


def from_pretrained(path: str | os.PathLike, vocab: BERTVocab | str | os.PathLike | None = None,
                    model: str | None = None, ctx: mx.Context | None = None,
                    labels: Sequence[str] | None = None,
                    lower: bool | None = None) -> mx.gluon.HybridBlock:
    """Load a pretrained or fine-tuned model -> the block (BERTModel or the task head it holds),
    with `block.pretrained_info` (PretrainedInfo: vocab, casing, label names, max length).

    path: a folder written by save_pretrained or by transformers' save_pretrained (HF BERT
    task heads load into the matching gluonbert head, id2label becoming the label names), a
    gluonbert checkpoint folder, or a GluonNLP 0.10 `.params` file. A `.params` file carries no
    configuration: give `model` (a registered name such as 'bert_12_768_12') and `vocab` (a
    BERTVocab, or the path of GluonNLP's vocabulary .json or a vocab.txt).
    vocab: replaces the folder's vocabulary (its size must fit). labels / lower: override the
    label names / casing the folder records. ctx: default mx.cpu().
    """
    path = str(path)
    vocab = _read_vocab(vocab)
    meta = {}
    if detect_format(path) == 'gluonnlp':
        checkpoint = _read_params_file(path, vocab, model)
    else:
        if model is not None:
            raise ValueError(f'model={model!r} is only used for .params files; {path} carries '
                             'its own configuration')
        meta = _read_meta(path)
        checkpoint = load_checkpoint(path, vocab=vocab)
    if checkpoint.vocab is None:
        raise ConversionError(f'{path} ships no vocabulary (vocab.txt); pass vocab=BERTVocab'
                              '(...) or the path of a vocab.txt / GluonNLP .json')
    block = block_from_checkpoint(checkpoint, ctx=ctx or mx.cpu())
    block = _as_saved_head(block, meta.get('head_dropout', checkpoint.head_dropout),
                           meta.get('block'))
    _, kind = task_of(block)
    if labels is None:
        labels = meta.get('labels', checkpoint.labels)
    labels = _check_labels(block, kind, labels)
    settings = read_tokenizer_settings(path)
    if lower is None:
        lower = meta.get('lower', settings.get('do_lower_case'))
    if lower is None:
        lower = not vocab_looks_cased(checkpoint.vocab)
    block.pretrained_info = PretrainedInfo(
        vocab=checkpoint.vocab, lower=bool(lower), **tokenizer_options({**settings, **meta}),
        labels=labels,
        max_length=meta.get('max_length', backbone_of(block).config.max_length),
        task=meta.get('task'), precision=meta.get('precision', 'float32'), source=path,
        meta=meta)
    return block


def _as_saved_head(block, rate, class_name=None):
    """The task head rebuilt around the same loaded backbone as it was saved: dropout `rate`
    before its output layer, and a one-output BERTClassifier stays one (a checkpoint alone
    reads as BERTRegression); the output layer is copied. The block itself if nothing differs."""
    attr, kind = task_of(block)
    cls = SENTENCE_HEADS.get(class_name, type(block)) if kind == 'sequence_classification' \
        else type(block)
    if kind is None or (not rate and cls is type(block)):
        return block
    options = dict(dropout=float(rate or 0.0))
    if cls in (BERTClassifier, BERTForTokenClassification):
        options['num_classes'] = int(getattr(block, attr).weight.shape[0])
    if block.pooling is not None:
        options['pooling'] = block.pooling
    head = cls(block.bert, **options)
    head.initialize_head()
    arrays, _ = block_to_canonical(block)
    assign_parameters(head, canonical_to_block(head, arrays), source='the loaded head')
    return head


def _read_vocab(vocab):
    """None, a BERTVocab, or the path of a vocab.txt / GluonNLP vocabulary .json."""
    if vocab is None or isinstance(vocab, BERTVocab):
        return vocab
    if isinstance(vocab, (str, os.PathLike)):
        path = str(vocab)
        return BERTVocab.from_json(path) if path.endswith('.json') else BERTVocab.from_file(path)
    raise TypeError(f'vocab must be a BERTVocab or a file path; got {type(vocab).__name__}')


def _read_params_file(path, vocab, model):
    """A GluonNLP (or gluonbert BERTModel) .params file -> Checkpoint with `model`'s shape."""
    if model is None or vocab is None:
        raise ValueError(f'{path} is a .params file, which carries no configuration: give '
                         "model='<registered name, e.g. bert_12_768_12>' and vocab=<BERTVocab or "
                         'the vocabulary .json / vocab.txt it was trained with>')
    hparams = get_hparams(model, vocab_size=len(vocab))
    return load_checkpoint(path, vocab=vocab, num_heads=hparams.num_heads, hparams=hparams,
                           fmt='gluonnlp')


def _read_meta(folder):
    """gluonbert.json of a folder ({} if absent); an unknown format is an error."""
    path = os.path.join(folder, META_NAME)
    if not os.path.isfile(path):
        return {}
    meta = read_config(path)
    if meta.get('format') != FORMAT or meta.get('format_version', 0) > FORMAT_VERSION:
        raise ConversionError(f'{path} is not gluonbert pretrained metadata of format version '
                              f'<= {FORMAT_VERSION} (format {meta.get("format")!r}, version '
                              f'{meta.get("format_version")!r}); a newer gluonbert wrote it?')
    return meta
