"""The model zoo registry: named BERT shapes and `get_model`, GluonNLP 0.10-compatible."""
import dataclasses
import os
import warnings
from typing import Any

import mxnet as mx

from . import store
from .convert import ConversionError, detect_format, load_checkpoint
from .convert.layout import canonical_to_block, load_into, resolve_heads
from .data.vocab import BERTVocab, as_vocab, bundled_vocab_path
from .model.bert import BERTModel
from .model.config import BERTConfig
from .model.encoder import BERTEncoder

# name -> (num_layers, units, num_heads, hidden_size): BERT base/large, MiniLM-L6, Google's small
# BERTs; every other hyperparameter is BERTConfig's default (BERT-base's).
_SHAPES = {
    'bert_12_768_12': (12, 768, 12, 3072),
    'bert_24_1024_16': (24, 1024, 16, 4096),
    'bert_6_384_12': (6, 384, 12, 1536),
    'bert_2_128_2': (2, 128, 2, 512),
    'bert_4_256_4': (4, 256, 4, 1024),
    'bert_4_512_8': (4, 512, 8, 2048),
    'bert_8_512_8': (8, 512, 8, 2048),
}
_MODELS = {}  # name -> BERTConfig
# Overridable without hparam_allow_override=True (GluonNLP: dropout; vocab_size must match the
# vocabulary anyway). Every other BERTConfig field needs hparam_allow_override=True.
MUTABLE = ('dropout', 'attention_dropout', 'vocab_size')


class ModelOptionError(ValueError, AssertionError):
    """A get_model call that cannot work; an AssertionError too, which GluonNLP 0.10 raised."""


class PretrainedMismatchError(ConversionError, AssertionError):
    """Pretrained weights do not fit the model built; an AssertionError too, as in GluonNLP."""


def register_model(name: str, **hparams: Any) -> None:
    """Register (or replace) a named BERT shape: BERTConfig fields; the missing ones take
    BERTConfig's defaults (vocab_size is always set from the vocabulary by get_model)."""
    BERTConfig.check_names(hparams, context=f' for {name!r}')
    _MODELS[name] = BERTConfig(**hparams)


for _name, (_layers, _units, _heads, _hidden) in _SHAPES.items():
    register_model(_name, num_layers=_layers, units=_units, num_heads=_heads,
                   hidden_size=_hidden)


def list_models() -> dict[str, dict[str, Any]]:
    """Registered model names -> their hyperparameters (BERTConfig.to_dict() copies)."""
    return {name: config.to_dict() for name, config in sorted(_MODELS.items())}


def get_hparams(name: str, **overrides: Any) -> BERTConfig:
    """Hyperparameters (a BERTConfig) of a registered model with validated overrides applied."""
    if name not in _MODELS:
        raise ValueError('unknown model {!r}; registered models: {}'.format(
            name, ', '.join(sorted(_MODELS))))
    BERTConfig.check_names(overrides, 'cannot override', f' of {name!r}')
    return _MODELS[name].replace(**overrides)


def get_model(name: str, dataset_name: str | None = None, vocab: BERTVocab | None = None,
              pretrained: bool | str | os.PathLike = True,
              ctx: mx.Context | list[mx.Context] = mx.cpu(), root: str | None = None,
              use_pooler: bool | None = None, use_decoder: bool | None = None,
              use_classifier: bool | None = None, dropout: float | None = None,
              output_attention: bool = False, output_all_encodings: bool = False,
              use_token_type_embed: bool = True, pretrained_allow_missing: bool = False,
              ignore_extra: bool = False, hparam_allow_override: bool = False,
              for_training: bool = True, **overrides: Any) -> tuple[BERTModel, BERTVocab]:
    """Build a registered BERT -> (BERTModel, BERTVocab), as GluonNLP 0.10's get_model did.

    pretrained: True (the default, as GluonNLP: the store's weights for `dataset_name`, see
    gluonbert.store.list_pretrained(); cached under `root`, else $GLUONBERT_HOME/models, else
    ~/.gluonbert/models); False (random N(0, 0.02) weights: ask for them explicitly); or the path
    of a checkpoint: a HuggingFace folder, a Google TensorFlow BERT folder or prefix, a GluonNLP
    .params file or a gluonbert folder (see gluonbert.convert.load_checkpoint). Without
    dataset_name and a path, pretrained=True is refused, naming both fixes.
    vocab: a BERTVocab; by default the checkpoint's, else the dataset's, else (random weights
    only) Google's uncased vocab shipped with gluonbert. Its size sets the embedding and must fit
    the checkpoint.
    use_pooler / use_decoder / use_classifier: None (the default) means True for a random
    model and "as the checkpoint has" for a pretrained one; True or False is obeyed (a head
    asked for but absent from the checkpoint is an error unless pretrained_allow_missing).
    output_attention / output_all_encodings: also return every layer's attention weights
    (batch, num_heads, seq_len, seq_len) / hidden states (batch, seq_len, units), in GluonNLP's
    output order (see BERTModel). use_token_type_embed=False: no segment embedding (token_types
    are ignored; a checkpoint's segment table is dropped).
    pretrained_allow_missing: parameters the checkpoint lacks are left uninitialized, as in
    GluonNLP (a warning names them; `model.initialize()` gives them random weights).
    ignore_extra: drop checkpoint tensors the model has no place for (e.g. layers beyond a
    smaller num_layers) instead of refusing them.
    Overrides (units=..., num_layers=...) change the registered shape and need
    hparam_allow_override=True (GluonNLP's rule; dropout and attention_dropout need nothing);
    they are validated, and a pretrained checkpoint must agree with the resulting architecture.
    Refusals that GluonNLP raised as AssertionError are AssertionErrors here too
    (ModelOptionError, PretrainedMismatchError), besides ValueError.
    for_training=False: inference only. MXNet allocates a gradient buffer per parameter when
    it is initialized (PyTorch waits for the first backward), so this skips them (grad_req
    'null'): BERT-base takes about 420 MB less. Such a model cannot be trained.
    """
    _check_overrides(name, overrides, hparam_allow_override)
    vocab = None if vocab is None else as_vocab(vocab)  # GluonNLP vocab objects too
    # Validate the overrides before any download; num_heads is needed to read GluonNLP files.
    num_heads = get_hparams(name, **{k: v for k, v in overrides.items()
                                     if k != 'vocab_size'}).num_heads
    checkpoint = None
    if pretrained is True:
        if dataset_name is None:
            raise ModelOptionError(
                f'get_model({name!r}): pretrained=True needs dataset_name (pretrained=True is '
                f'the default, as in GluonNLP). Pass dataset_name=... for pretrained weights '
                f'({_pretrained_summary()}), or pretrained=False for random weights')
        checkpoint = _load_pretrained(name, dataset_name, num_heads, root, vocab)
    elif pretrained is not False and pretrained is not None:
        if dataset_name is not None and vocab is None and \
                detect_format(pretrained) == 'gluonnlp':
            vocab = store.load_vocab(dataset_name, root)  # a .params file has no vocabulary
        elif dataset_name is not None:
            raise ValueError(f'dataset_name={dataset_name!r} is only used with pretrained=True or '
                             f'a .params '
                             f'file; {pretrained} carries its own vocabulary')
        checkpoint = load_checkpoint(pretrained, vocab=vocab, num_heads=num_heads)
    elif dataset_name is not None and vocab is None:
        vocab = store.load_vocab(dataset_name, root)
    if checkpoint is not None:
        vocab = vocab if vocab is not None else checkpoint.vocab
        if vocab is None:
            raise ValueError(f'{checkpoint.source} ships no vocabulary; pass vocab=BERTVocab(...)')
    if vocab is None:
        vocab = BERTVocab.from_file(bundled_vocab_path('en_uncased'))
    if 'vocab_size' in overrides and overrides['vocab_size'] != len(vocab):
        raise ValueError('vocab_size={} does not match the vocabulary, which has {} tokens'
                         .format(overrides['vocab_size'], len(vocab)))
    overrides['vocab_size'] = len(vocab)
    if dropout is not None:
        overrides['dropout'] = dropout
    encoder = BERTEncoder(get_hparams(name, **overrides), output_attention=output_attention,
                          output_all_encodings=output_all_encodings,
                          use_token_type_embed=use_token_type_embed)
    present = {'pooler', 'decoder', 'classifier'} if checkpoint is None else checkpoint.heads
    flags, ignored = resolve_heads(present, use_pooler, use_decoder, use_classifier)
    model = BERTModel(encoder, **flags)
    if not for_training:
        model.collect_params().setattr('grad_req', 'null')
    if checkpoint is None:
        model.initialize(ctx=ctx)
    else:
        _load_weights(model, _fit_checkpoint(checkpoint, encoder, ignore_extra), ignored, ctx,
                      pretrained_allow_missing, ignore_extra)
    return model, vocab


def _check_overrides(name, overrides, hparam_allow_override):
    """GluonNLP's rule: a registered model's shape changes only with hparam_allow_override."""
    fixed = sorted(k for k in overrides if k in BERTConfig.field_names() and k not in MUTABLE)
    if fixed and not hparam_allow_override and name in _MODELS:
        registered = ', '.join(f'{k}={_MODELS[name][k]!r}' for k in fixed)
        raise ModelOptionError(f'cannot override the predefined hyperparameter(s) '
                               f'{", ".join(fixed)} of {name!r} (registered: {registered}); '
                               f'pass hparam_allow_override=True to change them')


def _load_pretrained(name, dataset_name, num_heads, root, vocab):
    """The store's checkpoint; a dataset without weights for `name` names pretrained=False."""
    try:
        return store.load_pretrained(name, dataset_name, num_heads, root=root, vocab=vocab)
    except ValueError as err:
        if dataset_name in store.list_pretrained().get(name, ()):
            raise
        raise ModelOptionError(f'{err}. For random weights with the {dataset_name!r} vocabulary '
                               f'pass pretrained=False') from err


def _fit_checkpoint(checkpoint, encoder, ignore_extra):
    """Drop the checkpoint tensors the model leaves out on purpose: the segment table with
    use_token_type_embed=False, layers beyond a smaller num_layers with ignore_extra=True."""
    arrays = checkpoint.arrays
    hparams = dict(checkpoint.hparams)
    if not encoder.use_token_type_embed:
        arrays = {k: v for k, v in arrays.items() if not k.startswith('encoder.token_type_embed.')}
    layers = encoder.config.num_layers
    if ignore_extra and hparams.get('num_layers', layers) > layers:
        kept = tuple(f'encoder.layers.{i}.' for i in range(layers))
        arrays = {k: v for k, v in arrays.items()
                  if not k.startswith('encoder.layers.') or k.startswith(kept)}
        hparams['num_layers'] = layers
    return dataclasses.replace(checkpoint, arrays=arrays, hparams=hparams)


def _load_weights(model, checkpoint, ignored, ctx, allow_missing, ignore_extra):
    """Initialize `model` from `checkpoint`; with allow_missing the parameters the checkpoint
    lacks stay uninitialized (GluonNLP's behaviour) and a warning names them."""
    params = model._collect_params_with_prefix()
    # names only (load_into below warns about a dropped fine-tuned head, once)
    loaded = set(canonical_to_block(model, checkpoint.without(ignored, warn=False),
                                    checkpoint.task))
    missing = sorted(set(params) - loaded)
    if allow_missing and missing:
        for param_name, param in params.items():
            if param_name in loaded:
                param.initialize(ctx=ctx)
    else:
        model.initialize(ctx=ctx)
    try:
        load_into(model, checkpoint, allow_missing=allow_missing, allow_unexpected=ignore_extra,
                  ignore_heads=ignored)
    except ConversionError as err:
        hints = []
        if missing and not allow_missing:
            hints.append('use_pooler/use_decoder/use_classifier=False leave a head out; '
                         'pretrained_allow_missing=True leaves missing parameters uninitialized')
        if loaded - set(params) and not ignore_extra:
            hints.append('ignore_extra=True drops the tensors the model has no place for')
        raise PretrainedMismatchError(
            str(err) + ''.join(f'\n  get_model: {hint}' for hint in hints)) from err
    if allow_missing and missing:
        warnings.warn(f'{checkpoint.source} has no {", ".join(missing)}: left uninitialized '
                      f'(pretrained_allow_missing=True); call model.initialize() to give them '
                      f'random weights', stacklevel=3)


def _pretrained_summary():
    return '; '.join('{}: {}'.format(model, ', '.join(datasets))
                     for model, datasets in store.list_pretrained().items())
