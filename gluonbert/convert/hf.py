"""HuggingFace BERT checkpoints (`config.json`, `model.safetensors` or `pytorch_model.bin`,
`vocab.txt`) <-> gluonbert, for BertModel, BertForPreTraining and the task models."""
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mxnet.gluon import HybridBlock

from ..data.vocab import BERTVocab
from ..model.attention import interleave_qkv, split_qkv
from ..model.config import BERTConfig
from ..files import atomic_folder, write_json
from .common import Checkpoint, ConversionError, checkpoint_with_vocab
from .layout import backbone_of, block_to_canonical
from .safetensors_format import read_safetensors, write_safetensors

# The hyperparameters' HF names (config.json fields) are BERTConfig's: to_hf_dict / from_hf_dict.

# task kind <-> HF architecture, and the HF name of the task's output layer
TASK_ARCHITECTURES = {'sequence_classification': 'BertForSequenceClassification',
                      'token_classification': 'BertForTokenClassification',
                      'question_answering': 'BertForQuestionAnswering',
                      'multiple_choice': 'BertForMultipleChoice'}
_TASK_LAYER = {'question_answering': 'qa_outputs'}  # the others call it `classifier`
LABELLED_TASKS = ('sequence_classification', 'token_classification')  # outputs have names

# (gluonbert canonical name, HF name without the `bert.` prefix); {i} is a layer index.
_BACKBONE = [
    ('encoder.word_embed.weight', 'embeddings.word_embeddings.weight'),
    ('encoder.token_type_embed.weight', 'embeddings.token_type_embeddings.weight'),
    ('encoder.position_weight', 'embeddings.position_embeddings.weight'),
    ('encoder.embed_norm.gamma', 'embeddings.LayerNorm.weight'),
    ('encoder.embed_norm.beta', 'embeddings.LayerNorm.bias'),
    ('encoder.layers.{i}.attention.out_proj.weight',
     'encoder.layer.{i}.attention.output.dense.weight'),
    ('encoder.layers.{i}.attention.out_proj.bias', 'encoder.layer.{i}.attention.output.dense.bias'),
    ('encoder.layers.{i}.attention_norm.gamma',
     'encoder.layer.{i}.attention.output.LayerNorm.weight'),
    ('encoder.layers.{i}.attention_norm.beta', 'encoder.layer.{i}.attention.output.LayerNorm.bias'),
    ('encoder.layers.{i}.ffn_1.weight', 'encoder.layer.{i}.intermediate.dense.weight'),
    ('encoder.layers.{i}.ffn_1.bias', 'encoder.layer.{i}.intermediate.dense.bias'),
    ('encoder.layers.{i}.ffn_2.weight', 'encoder.layer.{i}.output.dense.weight'),
    ('encoder.layers.{i}.ffn_2.bias', 'encoder.layer.{i}.output.dense.bias'),
    ('encoder.layers.{i}.ffn_norm.gamma', 'encoder.layer.{i}.output.LayerNorm.weight'),
    ('encoder.layers.{i}.ffn_norm.beta', 'encoder.layer.{i}.output.LayerNorm.bias'),
    ('pooler.dense.weight', 'pooler.dense.weight'),
    ('pooler.dense.bias', 'pooler.dense.bias'),
]
# Pretraining heads: HF keeps them outside the `bert.` module.
_HEADS = [
    ('decoder.transform.weight', 'cls.predictions.transform.dense.weight'),
    ('decoder.transform.bias', 'cls.predictions.transform.dense.bias'),
    ('decoder.layer_norm.gamma', 'cls.predictions.transform.LayerNorm.weight'),
    ('decoder.layer_norm.beta', 'cls.predictions.transform.LayerNorm.bias'),
    ('decoder.bias', 'cls.predictions.bias'),
    ('classifier.dense.weight', 'cls.seq_relationship.weight'),
    ('classifier.dense.bias', 'cls.seq_relationship.bias'),
]
_QKV = re.compile(r'encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)')
_TIED = {'cls.predictions.decoder.weight': 'encoder.word_embed.weight',
         'cls.predictions.decoder.bias': 'decoder.bias'}
_BUFFERS = {'embeddings.position_ids', 'embeddings.token_type_ids'}  # not parameters


def _pattern(template):
    return re.compile(re.escape(template).replace(re.escape('{i}'), r'(\d+)'))


_FROM_HF = [(_pattern(hf), ours) for ours, hf in _BACKBONE + _HEADS]
_TO_HF = [(_pattern(ours), hf) for ours, hf in _BACKBONE + _HEADS]
_BACKBONE_OURS = [_pattern(ours) for ours, _ in _BACKBONE]


def config_to_hparams(config: Mapping[str, Any], source: str = 'config.json'
                      ) -> dict[str, Any]:
    """A HuggingFace/Google BERT config dict -> the hyperparameters (BERTConfig.to_dict(),
    validated; a field the config omits, such as Google's layer_norm_eps, takes the default)."""
    try:
        return BERTConfig.from_hf_dict(config, source).to_dict()
    except ValueError as err:
        raise ConversionError(str(err)) from None


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Load a JSON config file, with a clear error if it is absent or malformed."""
    if not os.path.isfile(path):
        raise ConversionError(f'config file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
    except json.JSONDecodeError as err:
        raise ConversionError(f'{path} is not valid JSON: {err}') from None
    if not isinstance(config, dict):
        raise ConversionError(f'{path} is not a JSON object')
    return config


def read_hf_state(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Tensors of a HF model folder -> {HF name: numpy array}; safetensors needs no torch."""
    single = os.path.join(directory, 'model.safetensors')
    index = os.path.join(directory, 'model.safetensors.index.json')
    binary = os.path.join(directory, 'pytorch_model.bin')
    if os.path.isfile(single):
        return read_safetensors(single)
    if os.path.isfile(index):
        shards = sorted(set(read_config(index).get('weight_map', {}).values()))
        state = {}
        for shard in shards:
            state.update(read_safetensors(os.path.join(directory, shard)))
        return state
    if os.path.isfile(binary):
        return _read_torch_bin(binary)
    raise ConversionError(f'{directory} holds no weights: expected model.safetensors, '
                          'model.safetensors.index.json or pytorch_model.bin')


def _read_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise ConversionError(f'{path} is a PyTorch pickle; reading it needs torch (pip install '
                              'torch), or convert the folder to model.safetensors') \
            from None
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for damaged pickles
        raise ConversionError(f'cannot read {path}: {err}') from None
    return {name: (t.float() if t.dtype == torch.bfloat16 else t).numpy()
            for name, t in state.items() if hasattr(t, 'numpy')}


def hf_to_canonical(state: Mapping[str, np.ndarray], num_heads: int,
                    task_layer: str = 'classifier') -> dict[str, np.ndarray]:
    """{HF name: array} -> {gluonbert canonical name: array}; q/k/v fused per layer.

    Accepts BertModel names and the `bert.`-prefixed names of BertFor* models, old `gamma` /
    `beta` LayerNorm names, and checks that the tied MLM decoder weight equals the embedding.
    Unrecognised names are kept as they are, so the strict loader reports them.
    """
    out, qkv, tied = {}, {}, {}
    for name, value in state.items():
        short = name[len('bert.'):] if name.startswith('bert.') else name
        short = re.sub(r'LayerNorm\.gamma$', 'LayerNorm.weight', short)
        short = re.sub(r'LayerNorm\.beta$', 'LayerNorm.bias', short)
        match = _QKV.fullmatch(short)
        if match:
            layer, part, kind = match.groups()
            qkv.setdefault((layer, kind), {})[part] = value
        elif short in _BUFFERS:
            continue
        elif short in _TIED:
            tied[short] = value
        elif short in (task_layer + '.weight', task_layer + '.bias'):
            out['task.' + short.split('.')[-1]] = value
        else:
            out[_rename(short, _FROM_HF) or name] = value
    for (layer, kind), parts in sorted(qkv.items()):
        if set(parts) != {'query', 'key', 'value'}:
            raise ConversionError(f'layer {layer} has the attention {kind} of {sorted(parts)} '
                                  f'only; query, key and '
                                  'value are all needed')
        out[f'encoder.layers.{layer}.attention.qkv.{kind}'] = interleave_qkv(
            parts['query'], parts['key'], parts['value'], num_heads)
    untied = [f'{name} differs from {_TIED[name]}' for name, value in sorted(tied.items())
              if _TIED[name] in out and not np.array_equal(out[_TIED[name]], value)]
    if untied:
        raise ConversionError('{}, but gluonbert ties them (the MLM output layer shares the word '
                              'embedding and its bias)'.format('; '.join(untied)))
    return out


def _rename(name, table):
    for pattern, template in table:
        match = pattern.fullmatch(name)
        if match:
            return template.replace('{i}', match.group(1)) if match.groups() else template
    return None


def canonical_to_hf(arrays: Mapping[str, np.ndarray], num_heads: int, architecture: str,
                    task_layer: str = 'classifier') -> dict[str, np.ndarray]:
    """{canonical name: array} -> {HF name: array} for `architecture`, e.g. BertForPreTraining."""
    prefix = '' if architecture == 'BertModel' else 'bert.'
    out = {}
    for name, value in arrays.items():
        match = re.fullmatch(r'encoder\.layers\.(\d+)\.attention\.qkv\.(weight|bias)', name)
        if match:
            layer, kind = match.groups()
            for part, tensor in zip(('query', 'key', 'value'), split_qkv(value, num_heads)):
                out[f'{prefix}encoder.layer.{layer}.attention.self.{part}.{kind}'] = tensor
        elif name.startswith('task.'):
            out[task_layer + name[len('task'):]] = value
        else:
            hf_name = _rename(name, _TO_HF)
            if hf_name is None:
                raise ConversionError(f'no HuggingFace name for gluonbert parameter {name}')
            backbone = any(p.fullmatch(name) for p in _BACKBONE_OURS)
            out[(prefix if backbone else '') + hf_name] = value
    return out


def read_hf_checkpoint(directory: str | os.PathLike, vocab: BERTVocab | None = None
                       ) -> Checkpoint:
    """A HuggingFace BERT folder -> Checkpoint (canonical tensors, hyperparameters, vocabulary).

    `vocab` (a BERTVocab) replaces the folder's vocab.txt; its size must still fit.
    """
    if not os.path.isdir(directory):
        raise ConversionError(f'not a HuggingFace model folder: {directory}')
    config_path = os.path.join(directory, 'config.json')
    config = read_config(config_path)
    hparams = config_to_hparams(config, config_path)
    architectures = config.get('architectures') or []
    task = next((kind for kind, arch in TASK_ARCHITECTURES.items() if arch in architectures),
                None)
    state = read_hf_state(directory)
    arrays = hf_to_canonical(state, hparams['num_heads'], _TASK_LAYER.get(task, 'classifier'))
    labels = config_labels(config, config_path) if task in LABELLED_TASKS else None
    if vocab is None and not os.path.isfile(os.path.join(directory, 'vocab.txt')):
        vocab = tokenizer_json_vocab(os.path.join(directory, 'tokenizer.json'))
    checkpoint = checkpoint_with_vocab(arrays, hparams, vocab, directory, directory, task, labels)
    checkpoint.head_dropout = config_head_dropout(config, task)
    return checkpoint


def head_dropout_rate(block: HybridBlock) -> float:
    """Dropout rate before a task head's output layer (0.0 for none or a BERTModel)."""
    dropout = getattr(block, 'dropout', None)
    return float(dropout._rate) if dropout is not None else 0.0


def config_head_dropout(config: Mapping[str, Any], task: str | None) -> float | None:
    """The dropout HF's task model applies before its output layer: classifier_dropout, else
    hidden_dropout_prob (none for question answering or a bare model)."""
    if task is None or task == 'question_answering':
        return None
    rate = config.get('classifier_dropout')
    return float(rate if rate is not None else config.get('hidden_dropout_prob',
                                                          BERTConfig().dropout))


def tokenizer_json_vocab(path: str | os.PathLike) -> BERTVocab | None:
    """The WordPiece vocabulary of a HF `tokenizer.json` (transformers >= 5 writes no vocab.txt)
    -> BERTVocab, or None if there is no such file."""
    if not os.path.isfile(path):
        return None
    model = read_config(path).get('model') or {}
    if model.get('type') != 'WordPiece' or not isinstance(model.get('vocab'), dict):
        raise ConversionError(f'{path}: a BERT tokenizer is a WordPiece model with a vocab; got '
                              f'model type {model.get("type")!r}')
    by_id = {int(i): token for token, i in model['vocab'].items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise ConversionError(f'{path}: the WordPiece ids are not 0..{len(by_id) - 1}')
    return BERTVocab([by_id[i] for i in range(len(by_id))])


def config_labels(config: Mapping[str, Any], source: str = 'config.json'
                  ) -> list[str] | None:
    """A config's `id2label` -> the label names in output order, or None if it has none."""
    id2label = config.get('id2label')
    if not id2label:
        return None
    try:
        by_index = {int(index): str(name) for index, name in id2label.items()}
    except (AttributeError, ValueError):
        raise ConversionError(f'{source}: id2label must map output indices to names; got '
                              f'{id2label!r}') from None
    if sorted(by_index) != list(range(len(by_index))):
        raise ConversionError(f'{source}: id2label indices {sorted(by_index)} are not 0..'
                              f'{len(by_index) - 1}')
    return [by_index[i] for i in range(len(by_index))]


def vocab_looks_cased(vocab: BERTVocab) -> bool:
    """True if more than 1% of the vocabulary's word tokens (and over 10) have upper case."""
    words = [t for t in vocab.idx_to_token if not (t.startswith('[') and t.endswith(']'))]
    return sum(1 for t in words if t != t.lower()) > max(10, len(words) // 100)


def tokenizer_config(vocab: BERTVocab, lower: bool | None = None, max_length: int = 512, *,
                     strip_accents: bool | None = None, tokenize_chinese_chars: bool = True
                     ) -> dict[str, Any]:
    """`tokenizer_config.json` for HF's BertTokenizer, matching gluonbert's BERTTokenizer with
    the same `lower` (None: guessed from the vocabulary's casing), `strip_accents` (None:
    accents go with lowercasing, in both) and `tokenize_chinese_chars`."""
    if lower is None:
        lower = not vocab_looks_cased(vocab)
    return dict(tokenizer_class='BertTokenizer', do_lower_case=bool(lower),
                strip_accents=None if strip_accents is None else bool(strip_accents),
                tokenize_chinese_chars=bool(tokenize_chinese_chars),
                model_max_length=int(max_length),
                unk_token=vocab.unknown_token, sep_token=vocab.sep_token,
                pad_token=vocab.padding_token, cls_token=vocab.cls_token,
                mask_token=vocab.mask_token, clean_up_tokenization_spaces=True)


def read_tokenizer_settings(folder: str | os.PathLike) -> dict[str, Any]:
    """A folder's tokenizer_config.json as read ({} without one): do_lower_case, strip_accents
    and tokenize_chinese_chars decide how BertTokenizer splits text, so they decide ours too.
    do_basic_tokenize=false (WordPiece on whitespace-split text only) is refused."""
    path = os.path.join(os.fspath(folder), 'tokenizer_config.json')
    if not os.path.isfile(path):
        return {}
    settings = read_config(path)
    if settings.get('do_basic_tokenize') is False:
        raise ConversionError(f'{path} sets do_basic_tokenize=false (WordPiece on whitespace-'
                              'split text only), which gluonbert\'s BERTTokenizer does not do; '
                              'remove the setting if the model was trained with basic '
                              'tokenization')
    return settings


def tokenizer_options(settings: Mapping[str, Any]) -> dict[str, bool | None]:
    """strip_accents and tokenize_chinese_chars of tokenizer settings (their defaults where
    absent), as BERTTokenizer and `tokenizer_config` take them."""
    strip_accents = settings.get('strip_accents')
    return dict(strip_accents=None if strip_accents is None else bool(strip_accents),
                tokenize_chinese_chars=bool(settings.get('tokenize_chinese_chars', True)))


def hf_architecture(block: HybridBlock) -> tuple[str, str | None, dict[str, np.ndarray]]:
    """The HuggingFace class that holds what `block` holds."""
    if getattr(block, 'pooling', None) == 'mean':
        raise ConversionError(f'{type(block).__name__} pools the mean of the tokens; '
                              f'HuggingFace\'s BERT heads pool '
                              '[CLS] through the pooler, so the saved model would answer '
                              'differently. Save it with save_native_checkpoint, or export it '
                              'with export_model')
    arrays, task = block_to_canonical(block)
    if task is not None:
        return TASK_ARCHITECTURES[task], task, arrays
    heads = {h for h in ('decoder', 'classifier') if any(k.startswith(h + '.') for k in arrays)}
    architecture = {frozenset(): 'BertModel', frozenset({'decoder'}): 'BertForMaskedLM',
                    frozenset({'classifier'}): 'BertForNextSentencePrediction',
                    frozenset({'decoder', 'classifier'}): 'BertForPreTraining'}[frozenset(heads)]
    return architecture, None, arrays


def hparams_to_config(hparams: BERTConfig | Mapping[str, Any], architecture: str,
                      pad_token_id: int = 0, num_labels: int | None = None,
                      problem_type: str | None = None,
                      labels: Sequence[str] | None = None) -> dict[str, Any]:
    """gluonbert hyperparameters (a BERTConfig or its dict) -> a BertConfig dict that
    transformers loads.

    labels: names of the num_labels outputs (id2label / label2id); default LABEL_0, LABEL_1...
    """
    config = dict(architectures=[architecture], model_type='bert',
                  **BERTConfig.from_dict(hparams).to_hf_dict(), initializer_range=0.02,
                  pad_token_id=pad_token_id, position_embedding_type='absolute',
                  tie_word_embeddings=True)
    if num_labels is not None:
        names = check_label_names(labels, num_labels) or [f'LABEL_{i}' for i in range(num_labels)]
        config['id2label'] = {str(i): name for i, name in enumerate(names)}
        config['label2id'] = {name: i for i, name in enumerate(names)}
    elif labels is not None:
        raise ConversionError(f'{architecture} has no labelled outputs; labels must be None')
    if problem_type is not None:
        config['problem_type'] = problem_type
    return config


def check_label_names(labels: Sequence[str] | None, num_labels: int | None
                      ) -> list[str] | None:
    """`labels` as a list of num_labels distinct strings (None stays None); else ValueError."""
    if labels is None:
        return None
    if isinstance(labels, str) or not all(isinstance(name, str) for name in labels):
        raise ValueError(f'labels must be a list of strings, one per output; got {labels!r}')
    labels = list(labels)
    if len(labels) != num_labels:
        raise ValueError(f'{len(labels)} label names ({", ".join(labels)}) for a head with '
                         f'{num_labels} outputs; give one name per output')
    if len(set(labels)) != len(labels):
        raise ValueError(f'label names must be distinct; got {labels}')
    return labels


def save_hf_checkpoint(block: HybridBlock, vocab: BERTVocab, directory: str | os.PathLike,
                       overwrite: bool = False, labels: Sequence[str] | None = None,
                       lower: bool | None = None, **tokenizer_options: bool | None) -> str:
    """Write `block` (BERTModel or task model) as a HuggingFace folder transformers can load.

    Writes model.safetensors, config.json (id2label from `labels`, the names of a classifier's
    outputs), vocab.txt and tokenizer_config.json (do_lower_case = `lower`, None: guessed from
    the vocabulary; tokenizer_options: strip_accents, tokenize_chinese_chars) into a temp folder,
    then renames it into place, so a failure never leaves a half-written checkpoint. Returns the
    architecture.
    """
    with atomic_folder(directory, overwrite) as temp:
        architecture = write_hf_files(block, vocab, temp, labels, lower, **tokenizer_options)
    return architecture


def write_hf_files(block: HybridBlock, vocab: BERTVocab, folder: str | os.PathLike,
                   labels: Sequence[str] | None = None, lower: bool | None = None,
                   max_length: int | None = None, **tokenizer_options: bool | None) -> str:
    """Write the HuggingFace files of `block` into an existing (temporary) folder; returns the
    architecture. max_length: the tokenizer's model_max_length (default: the position table);
    tokenizer_options: strip_accents, tokenize_chinese_chars (see `tokenizer_config`)."""
    hparams = backbone_of(block).config
    if len(vocab) != hparams.vocab_size:
        raise ConversionError(f'the vocabulary has {len(vocab)} tokens but the model embeds '
                              f'{hparams.vocab_size}')
    architecture, task, arrays = hf_architecture(block)
    if 'encoder.token_type_embed.weight' not in arrays:
        # built with use_token_type_embed=False: HF always adds a segment table, so an all-zero
        # one gives the same outputs (transformers would otherwise fill a missing one randomly)
        arrays['encoder.token_type_embed.weight'] = np.zeros(
            (hparams.token_type_vocab_size, hparams.units), dtype=np.float32)
    outputs = np.shape(arrays['task.weight'])[0] if task else None
    state = canonical_to_hf(arrays, hparams.num_heads, architecture,
                            _TASK_LAYER.get(task, 'classifier'))
    is_regression = type(block).__name__ == 'BERTRegression'
    config = hparams_to_config(hparams, architecture, vocab[vocab.padding_token],
                               outputs if task in LABELLED_TASKS else None,
                               'regression' if is_regression else None, labels)
    if task not in (None, 'question_answering'):  # HF's head dropout, as the block's
        config['classifier_dropout'] = head_dropout_rate(block)
    write_safetensors(os.path.join(folder, 'model.safetensors'), state)
    write_json(os.path.join(folder, 'config.json'), config)
    vocab.to_file(os.path.join(folder, 'vocab.txt'))
    write_json(os.path.join(folder, 'tokenizer_config.json'),
               tokenizer_config(vocab, lower, max_length or hparams.max_length,
                                **tokenizer_options))
    return architecture
