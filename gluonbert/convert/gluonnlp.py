"""GluonNLP 0.10 BERT `.params` (structural names) -> gluonbert parameter names."""
import re

import numpy as np

from ..model.attention import interleave_qkv
from .common import Checkpoint, ConversionError, check_vocab_fits
from .native import read_params

# GluonNLP structural name -> gluonbert name; q/k/v projections are fused separately.
_RENAMES = [
    (r'word_embed\.0\.weight', 'encoder.word_embed.weight'),
    (r'token_type_embed\.0\.weight', 'encoder.token_type_embed.weight'),
    (r'encoder\.position_weight', 'encoder.position_weight'),
    (r'encoder\.layer_norm\.(gamma|beta)', r'encoder.embed_norm.\1'),
    (r'encoder\.transformer_cells\.(\d+)\.proj\.(weight|bias)',
     r'encoder.layers.\1.attention.out_proj.\2'),
    (r'encoder\.transformer_cells\.(\d+)\.layer_norm\.(gamma|beta)',
     r'encoder.layers.\1.attention_norm.\2'),
    (r'encoder\.transformer_cells\.(\d+)\.ffn\.ffn_([12])\.(weight|bias)',
     r'encoder.layers.\1.ffn_\2.\3'),
    (r'encoder\.transformer_cells\.(\d+)\.ffn\.layer_norm\.(gamma|beta)',
     r'encoder.layers.\1.ffn_norm.\2'),
    (r'pooler\.(weight|bias)', r'pooler.dense.\1'),
    (r'classifier\.(weight|bias)', r'classifier.dense.\1'),
    (r'decoder\.0\.(weight|bias)', r'decoder.transform.\1'),
    (r'decoder\.2\.(gamma|beta)', r'decoder.layer_norm.\1'),
    (r'decoder\.3\.bias', 'decoder.bias'),
]
_QKV = re.compile(r'encoder\.transformer_cells\.(\d+)\.attention_cell\.proj_(query|key|value)\.'
                  r'(weight|bias)')
_TIED = 'decoder.3.weight'  # the MLM output weight, tied to word_embed.0.weight


def convert_gluonnlp_params(arrays, num_heads):
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
                raise ConversionError('{} differs from word_embed.0.weight, but gluonbert ties '
                                      'the MLM output weight to the word embedding'.format(name))
            continue
        for pattern, replacement in _RENAMES:
            if re.fullmatch(pattern, name):
                out[re.sub(pattern, replacement, name)] = value
                break
        else:
            out[name] = value
    for (layer, kind), parts in qkv.items():
        if set(parts) != {'query', 'key', 'value'}:
            raise ConversionError('layer {} has {} {} projection(s) of query/key/value'.format(
                layer, sorted(parts), kind))
        out['encoder.layers.{}.attention.qkv.{}'.format(layer, kind)] = interleave_qkv(
            parts['query'], parts['key'], parts['value'], num_heads)
    return out


def is_gluonnlp_names(names):
    """True if parameter names look like GluonNLP 0.10's BERTModel.save_parameters output."""
    return any(n.startswith(('encoder.transformer_cells.', 'word_embed.0.')) for n in names)


def read_params_checkpoint(path, num_heads=None, vocab=None, hparams=None):
    """A `.params` file -> Checkpoint: GluonNLP 0.10's BERT names (converted) or gluonbert's own
    BERTModel.save_parameters names (already canonical).

    Such files carry no configuration: `num_heads` (needed to fuse GluonNLP's q/k/v) and the
    optional `hparams` come from the model they are loaded into.
    """
    arrays = read_params(path)
    if arrays and not any('.' in name for name in arrays):
        raise ConversionError(
            "{} uses the legacy prefix-based names ({}, ...) of Gluon's collect_params().save; "
            'gluonbert reads the structural names written by save_parameters'.format(
                path, sorted(arrays)[0]))
    if is_gluonnlp_names(arrays):
        if num_heads is None:
            raise ConversionError('a GluonNLP .params file carries no configuration: give '
                                  'num_heads (get_model(name, pretrained=path) does)')
        arrays = convert_gluonnlp_params(arrays, num_heads)
    elif not any(name.startswith('encoder.layers.') for name in arrays):
        raise ConversionError('{} holds neither GluonNLP BERT parameters (encoder.'
                              'transformer_cells.*) nor gluonbert ones (encoder.layers.*)'
                              .format(path))
    check_vocab_fits(vocab, arrays, None, path)
    return Checkpoint(arrays=arrays, hparams=dict(hparams or {}), vocab=vocab, source=path)
