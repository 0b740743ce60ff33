"""Checkpoint converters: each maps a source format's tensors onto gluonbert's parameter names.

One module per source format: `hf` (HuggingFace folders), `tf` (Google's TensorFlow BERT
checkpoints), `gluonnlp` (GluonNLP 0.10 `.params`) and `native` (gluonbert's own folder).
`load_checkpoint` recognises the format of a path and returns a `Checkpoint`.
"""
import os

from ..data.vocab import BERTVocab, as_vocab
from .common import Checkpoint, ConversionError, assign_parameters
from .layout import load_into, model_from_checkpoint

__all__ = ['Checkpoint', 'ConversionError', 'assign_parameters', 'detect_format',
           'load_checkpoint', 'load_into', 'model_from_checkpoint']

FORMATS = ('hf', 'tf', 'gluonnlp', 'gluonbert')


def detect_format(path: str | os.PathLike) -> str:
    """'hf', 'tf', 'gluonnlp' or 'gluonbert' for a checkpoint path; ConversionError otherwise."""
    path = str(path)
    if os.path.isdir(path):
        for marker, fmt in (('config.json', 'hf'), ('gluonbert_config.json', 'gluonbert'),
                            ('bert_config.json', 'tf')):
            if os.path.isfile(os.path.join(path, marker)):
                return fmt
    elif path.endswith('.params') and os.path.isfile(path):
        return 'gluonnlp'
    elif os.path.isfile(path + '.index') or (path.endswith('.index') and os.path.isfile(path)):
        return 'tf'
    raise ConversionError(
        f'cannot tell the checkpoint format of {path}: expected a HuggingFace folder '
        f'(config.json), '
        'a TensorFlow BERT folder (bert_config.json + bert_model.ckpt.*) or checkpoint prefix, '
        'a GluonNLP .params file, or a gluonbert folder (gluonbert_config.json)')


def load_checkpoint(path: str | os.PathLike, vocab: BERTVocab | None = None,
                    num_heads: int | None = None, hparams: dict | None = None,
                    fmt: str | None = None) -> Checkpoint:
    """Read any supported checkpoint -> Checkpoint with canonical gluonbert names.

    vocab: a BERTVocab to use instead of the checkpoint's own (its size must fit).
    num_heads, hparams: for GluonNLP .params, which carry no configuration.
    """
    fmt = fmt or detect_format(path)
    path = str(path)
    vocab = None if vocab is None else as_vocab(vocab)  # GluonNLP vocab objects too
    if fmt == 'hf':
        from .hf import read_hf_checkpoint
        return read_hf_checkpoint(path, vocab)
    if fmt == 'tf':
        from .tf import read_tf_checkpoint
        return read_tf_checkpoint(path, vocab)
    if fmt == 'gluonbert':
        from .native import read_native_checkpoint
        return read_native_checkpoint(path, vocab)
    if fmt == 'gluonnlp':
        from .gluonnlp import read_params_checkpoint
        return read_params_checkpoint(path, num_heads, vocab, hparams)
    raise ConversionError('unknown checkpoint format {!r}; known: {}'.format(fmt,
                                                                           ', '.join(FORMATS)))

