"""The model zoo registry: named BERT shapes and `get_model`, GluonNLP 0.10-compatible."""
import mxnet as mx

from . import store
from .convert import detect_format, load_checkpoint
from .convert.layout import load_into, resolve_heads
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
              use_pooler=None, use_decoder=None, use_classifier=None, dropout=None,
              for_training=True, **overrides):
    """Build a registered BERT -> (BERTModel, BERTVocab), as GluonNLP 0.10's get_model did.

    pretrained: False (random N(0, 0.02) weights); True (the store's weights for
    `dataset_name`, see gluonbert.store.list_pretrained(); cached under `root`, else
    $GLUONBERT_HOME/models, else ~/.gluonbert/models); or the path of a checkpoint: a
    HuggingFace folder, a Google TensorFlow BERT folder or prefix, a GluonNLP .params file or a
    gluonbert folder (see gluonbert.convert.load_checkpoint).
    vocab: a BERTVocab; by default the checkpoint's, else the dataset's, else Google's uncased
    vocab shipped with gluonbert. Its size sets the embedding and must fit the checkpoint.
    use_pooler / use_decoder / use_classifier: None (the default) means True for a random
    model and "as the checkpoint has" for a pretrained one; True or False is obeyed (a head
    asked for but absent from the checkpoint is an error).
    Overrides (units=..., num_layers=...) change the shape and are validated; a pretrained
    checkpoint must agree with the resulting architecture.
    for_training=False: inference only. MXNet allocates a gradient buffer per parameter when
    it is initialized (PyTorch waits for the first backward), so this skips them (grad_req
    'null'): BERT-base takes about 420 MB less. Such a model cannot be trained.
    """
    # Validate the overrides before any download; num_heads is needed to read GluonNLP files.
    num_heads = get_hparams(name, **{k: v for k, v in overrides.items()
                                     if k != 'vocab_size'})['num_heads']
    checkpoint = None
    if pretrained is True:
        if dataset_name is None:
            raise ValueError('pretrained=True needs dataset_name; pretrained weights exist for '
                             '{}'.format(_pretrained_summary()))
        checkpoint = store.load_pretrained(name, dataset_name, num_heads, root=root, vocab=vocab)
    elif pretrained is not False and pretrained is not None:
        if dataset_name is not None and vocab is None and \
                detect_format(pretrained) == 'gluonnlp':
            vocab = store.load_vocab(dataset_name, root)  # a .params file has no vocabulary
        elif dataset_name is not None:
            raise ValueError('dataset_name={!r} is only used with pretrained=True or a .params '
                             'file; {} carries its own vocabulary'.format(dataset_name,
                                                                         pretrained))
        checkpoint = load_checkpoint(pretrained, vocab=vocab, num_heads=num_heads)
    elif dataset_name is not None and vocab is None:
        vocab = store.load_vocab(dataset_name, root)
    if checkpoint is not None:
        vocab = vocab if vocab is not None else checkpoint.vocab
        if vocab is None:
            raise ValueError('{} ships no vocabulary; pass vocab=BERTVocab(...)'.format(
                checkpoint.source))
    if vocab is None:
        vocab = BERTVocab.from_file(bundled_vocab_path('en_uncased'))
    if 'vocab_size' in overrides and overrides['vocab_size'] != len(vocab):
        raise ValueError('vocab_size={} does not match the vocabulary, which has {} tokens'
                         .format(overrides['vocab_size'], len(vocab)))
    overrides['vocab_size'] = len(vocab)
    if dropout is not None:
        overrides['dropout'] = dropout
    encoder = BERTEncoder(**get_hparams(name, **overrides))
    present = {'pooler', 'decoder', 'classifier'} if checkpoint is None else checkpoint.heads
    flags, ignored = resolve_heads(present, use_pooler, use_decoder, use_classifier)
    model = BERTModel(encoder, **flags)
    if not for_training:
        model.collect_params().setattr('grad_req', 'null')
    model.initialize(ctx=ctx)
    if checkpoint is not None:
        load_into(model, checkpoint, ignore_heads=ignored)
    return model, vocab


def _pretrained_summary():
    return '; '.join('{}: {}'.format(model, ', '.join(datasets))
                     for model, datasets in store.list_pretrained().items())
