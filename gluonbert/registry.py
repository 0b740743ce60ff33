"""The model zoo registry: named BERT shapes and `get_model`, GluonNLP 0.10-compatible."""
import mxnet as mx

from .data.vocab import BERTVocab, bundled_vocab_path
from .model.bert import BERTModel
from .model.encoder import BERTEncoder

# Hyperparameters shared by every registered shape unless the entry says otherwise.
COMMON = dict(max_length=512, dropout=0.1, attention_dropout=None, layer_norm_eps=1e-12,
              activation='gelu', token_type_vocab_size=2)

# name -> (num_layers, units, num_heads, hidden_size): BERT base/large, MiniLM-L6, Google's small BERTs
_SHAPES = {
    'bert_12_768_12': (12, 768, 12, 3072),
    'bert_24_1024_16': (24, 1024, 16, 4096),
    'bert_6_384_12': (6, 384, 12, 1536),
    'bert_2_128_2': (2, 128, 2, 512),
    'bert_4_256_4': (4, 256, 4, 1024),
    'bert_4_512_8': (4, 512, 8, 2048),
    'bert_8_512_8': (8, 512, 8, 2048),
}
_MODELS = {}
OVERRIDABLE = ('vocab_size', 'units', 'hidden_size', 'num_heads', 'num_layers', 'max_length',
               'dropout', 'attention_dropout', 'layer_norm_eps', 'activation',
               'token_type_vocab_size')


def register_model(name, **hparams):
    """Register (or replace) a named BERT shape; missing fields take the COMMON defaults."""
    unknown = set(hparams) - set(OVERRIDABLE)
    if unknown:
        raise ValueError('unknown hyperparameter(s) {} for {!r}; known: {}'.format(
            sorted(unknown), name, ', '.join(OVERRIDABLE)))
    _MODELS[name] = dict(COMMON, **hparams)


for _name, (_layers, _units, _heads, _hidden) in _SHAPES.items():
    register_model(_name, num_layers=_layers, units=_units, num_heads=_heads,
                   hidden_size=_hidden)


def list_models():
    """Registered model names -> their hyperparameters (copies)."""
    return {name: dict(hparams) for name, hparams in sorted(_MODELS.items())}


def get_hparams(name, **overrides):
    """Hyperparameters of a registered model with validated overrides applied."""
    if name not in _MODELS:
        raise ValueError('unknown model {!r}; registered models: {}'.format(
            name, ', '.join(sorted(_MODELS))))
    unknown = set(overrides) - set(OVERRIDABLE)
    if unknown:
        raise ValueError('cannot override {} of {!r}; overridable: {}'.format(
            sorted(unknown), name, ', '.join(OVERRIDABLE)))
    return dict(_MODELS[name], **overrides)


def get_model(name, dataset_name=None, vocab=None, pretrained=False, ctx=mx.cpu(), root=None,
              use_pooler=True, use_decoder=True, use_classifier=True, dropout=None,
              **overrides):
    """Build a registered BERT -> (BERTModel, BERTVocab), as GluonNLP 0.10's get_model did.

    vocab: a BERTVocab (its size sets the embedding); by default Google's uncased vocab shipped
    with gluonbert. Overrides (units=..., num_layers=...) change the shape and are validated.
    """
    if pretrained is not False or dataset_name is not None:
        raise ValueError('pretrained weights and dataset vocabularies (pretrained={!r}, '
                         'dataset_name={!r}) are not available in this build yet; use '
                         'pretrained=False with vocab=None or a BERTVocab'.format(
                             pretrained, dataset_name))
    if vocab is None:
        vocab = BERTVocab.from_file(bundled_vocab_path('en_uncased'))
    if 'vocab_size' in overrides and overrides['vocab_size'] != len(vocab):
        raise ValueError('vocab_size={} does not match the vocabulary, which has {} tokens'
                         .format(overrides['vocab_size'], len(vocab)))
    overrides['vocab_size'] = len(vocab)
    if dropout is not None:
        overrides['dropout'] = dropout
    encoder = BERTEncoder(**get_hparams(name, **overrides))
    model = BERTModel(encoder, use_pooler=use_pooler, use_decoder=use_decoder,
                      use_classifier=use_classifier)
    model.initialize(ctx=ctx)
    return model, vocab
