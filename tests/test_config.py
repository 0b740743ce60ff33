"""BERTConfig: defaults, validation, dict and HuggingFace round trips, and that the registry, the
HF converter and the checkpoint record take their field lists from it (issue 21)."""
import dataclasses
import json
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import registry
from gluonbert.convert import ConversionError, hf
from gluonbert.convert.native import read_native_checkpoint, save_native_checkpoint
from gluonbert.model import BERTConfig, BERTEncoder, BERTModel
from gluonbert.train import checkpoint as train_checkpoint
from checkpoint_helpers import tiny_vocab
from conftest import TINY, random_batch, tiny_model

BERT_BASE = dict(vocab_size=30522, units=768, hidden_size=3072, num_heads=12, num_layers=12,
                 max_length=512, dropout=0.1, attention_dropout=None, layer_norm_eps=1e-12,
                 activation='gelu', token_type_vocab_size=2)
# What gluonbert_config.json's "hparams" held before BERTConfig (the on-disk format, unchanged).
OLD_HPARAMS_KEYS = ['vocab_size', 'units', 'hidden_size', 'num_heads', 'num_layers', 'max_length',
                    'dropout', 'attention_dropout', 'layer_norm_eps', 'activation',
                    'token_type_vocab_size']


def test_defaults_are_bert_base():
    assert BERTConfig().to_dict() == BERT_BASE
    assert list(BERTConfig().to_dict()) == OLD_HPARAMS_KEYS
    assert BERTConfig().resolved().attention_dropout == 0.1


def test_defaults_equal_transformers_bert_config():
    transformers = pytest.importorskip('transformers')
    theirs = transformers.BertConfig().to_dict()
    assert BERTConfig.from_hf_dict(theirs) == BERTConfig().resolved()
    ours = BERTConfig().to_hf_dict()
    assert ours == {name: theirs[name] for name in ours}


@pytest.mark.parametrize('changes, message', [
    (dict(units=0), 'units=0 must be a positive integer'),
    (dict(num_layers=2.0), 'num_layers=2.0 must be a positive integer'),
    (dict(vocab_size=True), 'vocab_size=True must be a positive integer'),
    (dict(units=64, num_heads=6), 'units=64 is not divisible by num_heads=6: every attention head '
                                  'gets units/num_heads features. Use num_heads in '
                                  r'\[1, 2, 4, 8, 16, 32, 64\] or make units a multiple of 6.'),
    (dict(dropout=1.0), r'dropout=1.0 must be in \[0, 1\)'),
    (dict(attention_dropout=-0.1), r'attention_dropout=-0.1 must be in \[0, 1\)'),
    (dict(layer_norm_eps=0.0), r'layer_norm_eps=0.0 must be positive \(BERT uses 1e-12\)'),
    (dict(activation='swish'), "activation='swish' is unknown; choose one of gelu, gelu_tanh, "
                               'relu'),
])
def test_invalid_values_are_refused_with_the_field_and_the_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        BERTConfig(**changes)
    with pytest.raises(ValueError, match=message):
        BERTConfig().replace(**changes)
    with pytest.raises(ValueError, match=message):
        BERTEncoder(**changes)


def test_dict_round_trip_and_unknown_keys_refused():
    config = BERTConfig(**TINY, activation='gelu_tanh', attention_dropout=0.2)
    assert BERTConfig.from_dict(config.to_dict()) == config
    assert BERTConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert BERTConfig.from_dict({'units': 32, 'num_heads': 2}) == BERTConfig(units=32, num_heads=2)
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['heads', 'layers'\]; "
                                         'known: vocab_size, units, hidden_size'):
        BERTConfig.from_dict(dict(TINY, layers=3, heads=2))
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['layers'\]"):
        BERTConfig().replace(layers=3)
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['layers'\]"):
        BERTEncoder(layers=3)


def test_frozen_and_replace_makes_a_validated_copy():
    config = BERTConfig(**TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.units = 32
    with pytest.raises(TypeError):
        config['units'] = 32  # a read-only mapping
    wider = config.replace(units=32, hidden_size=64)
    assert (wider.units, wider.hidden_size, config.units) == (32, 64, 16)
    assert hash(config) == hash(BERTConfig(**TINY)) and config != wider


def test_reads_like_the_dict_model_config_was():
    config = BERTConfig(**TINY)
    assert config['units'] == 16 and config.get('num_heads') == 4 and config.get('nope') is None
    assert 'max_length' in config and 'nope' not in config and len(config) == 11
    assert dict(config) == config.to_dict() and config == config.to_dict()
    assert list(config) == OLD_HPARAMS_KEYS
    with pytest.raises(KeyError):
        config['nope']  # noqa: B018


@pytest.mark.parametrize('fields', [
    dict(TINY),
    dict(TINY, activation='gelu_tanh', layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.3,
         token_type_vocab_size=3),
])
def test_hf_round_trip_through_a_real_transformers_bert_config(fields):
    transformers = pytest.importorskip('transformers')
    config = BERTConfig(**fields).resolved()
    theirs = transformers.BertConfig(**config.to_hf_dict())
    assert (theirs.hidden_size, theirs.intermediate_size, theirs.num_attention_heads,
            theirs.num_hidden_layers, theirs.max_position_embeddings, theirs.type_vocab_size) == \
        (config.units, config.hidden_size, config.num_heads, config.num_layers,
         config.max_length, config.token_type_vocab_size)
    assert theirs.attention_probs_dropout_prob == config.attention_dropout
    assert BERTConfig.from_hf_dict(theirs.to_dict()) == config


def test_from_hf_dict_names_the_source_and_the_problem():
    hf_config = BERTConfig(**TINY).to_hf_dict()
    google = {k: v for k, v in hf_config.items()
              if k not in ('layer_norm_eps', 'hidden_dropout_prob', 'attention_probs_dropout_prob')}
    assert BERTConfig.from_hf_dict(google) == BERTConfig(**dict(TINY, dropout=0.1))
    with pytest.raises(ValueError, match='bert_config.json lacks required field.*: hidden_act'):
        BERTConfig.from_hf_dict({k: v for k, v in hf_config.items() if k != 'hidden_act'},
                                'bert_config.json')
    with pytest.raises(ValueError, match="hidden_act 'swish' is not supported"):
        BERTConfig.from_hf_dict(dict(hf_config, hidden_act='swish'))
    with pytest.raises(ValueError, match="model_type is 'roberta'"):
        BERTConfig.from_hf_dict(dict(hf_config, model_type='roberta'))
    with pytest.raises(ValueError, match='c.json: units=16 is not divisible by num_heads=3'):
        BERTConfig.from_hf_dict(dict(hf_config, num_attention_heads=3), 'c.json')
    with pytest.raises(ConversionError, match='c.json: units=16 is not divisible'):
        hf.config_to_hparams(dict(hf_config, num_attention_heads=3), 'c.json')


def test_encoder_takes_a_config_or_keyword_fields():
    config = BERTConfig(**TINY)
    by_config, by_fields = BERTEncoder(config), BERTEncoder(**TINY)
    assert isinstance(by_fields.config, BERTConfig)
    assert by_config.config == by_fields.config == config.replace(attention_dropout=0.0)
    assert BERTEncoder(config, num_layers=1).config.num_layers == 1
    assert BERTEncoder(**config).config == by_config.config
    with pytest.raises(TypeError, match='config must be a BERTConfig, got dict'):
        BERTEncoder(dict(TINY))
    model = BERTModel(by_config, use_decoder=False, use_classifier=False)
    model.initialize()
    seq, pooled = model(*random_batch())
    assert seq.shape == (3, 10, 16) and model.config is by_config.config


def test_native_folder_format_is_unchanged_and_a_bad_config_is_named(tmp_path):
    model = tiny_model(use_decoder=False, use_classifier=False)
    vocab = tiny_vocab()
    folder = str(tmp_path / 'native')
    save_native_checkpoint(model, vocab, folder)
    with open(os.path.join(folder, 'gluonbert_config.json'), encoding='utf-8') as f:
        written = json.load(f)
    assert sorted(written['hparams']) == sorted(OLD_HPARAMS_KEYS)
    assert written['hparams'] == dict(TINY, attention_dropout=0.0, layer_norm_eps=1e-12,
                                      activation='gelu', token_type_vocab_size=2)
    loaded = gluonbert.load_checkpoint(folder)
    assert loaded.hparams == written['hparams']
    written['hparams']['num_heads'] = 3  # a damaged config names its file and the problem
    with open(os.path.join(folder, 'gluonbert_config.json'), 'w', encoding='utf-8') as f:
        json.dump(written, f)
    with pytest.raises(ConversionError, match='gluonbert_config.json: hparams: units=16 is not '
                                              'divisible by num_heads=3'):
        read_native_checkpoint(folder)


# --- "one place": the consumers derive their field lists from BERTConfig ---------------------

@dataclasses.dataclass(frozen=True)
class RotaryConfig(BERTConfig):
    """BERTConfig plus one hyperparameter, as a contributor would add it."""
    rotary: bool = dataclasses.field(default=False, metadata=dict(
        hf='rotary_embeddings', architecture=True, hf_required=True))


def test_a_new_field_is_in_every_derived_list():
    assert RotaryConfig.field_names() == BERTConfig.field_names() + ('rotary',)
    assert RotaryConfig.architecture_fields() == BERTConfig.architecture_fields() + ('rotary',)
    config = RotaryConfig(**TINY, rotary=True)
    assert config.to_hf_dict()['rotary_embeddings'] is True
    assert RotaryConfig.from_hf_dict(config.to_hf_dict()) == config.resolved()
    with pytest.raises(ValueError, match='lacks required field.*rotary_embeddings'):
        RotaryConfig.from_hf_dict(BERTConfig(**TINY).to_hf_dict())
    assert RotaryConfig.from_dict(dict(TINY, rotary=True)) == config


def test_registry_converter_and_checkpoint_record_use_the_config_type(monkeypatch):
    for module in (registry, hf, train_checkpoint):
        monkeypatch.setattr(module, 'BERTConfig', RotaryConfig)
    # the registry: a shape with the new field, listed, overridable under GluonNLP's rule
    gluonbert.register_model('bert_rotary_test', **TINY, rotary=True)
    assert gluonbert.list_models()['bert_rotary_test']['rotary'] is True
    assert registry.get_hparams('bert_rotary_test', rotary=False).rotary is False
    with pytest.raises(registry.ModelOptionError, match=r'hyperparameter\(s\) rotary of'):
        gluonbert.get_model('bert_rotary_test', pretrained=False, rotary=False)
    # the HF converter: read and written under its HF name
    hf_config = RotaryConfig(**TINY, rotary=True).to_hf_dict()
    assert hf.config_to_hparams(hf_config)['rotary'] is True
    assert hf.hparams_to_config(dict(TINY, rotary=True), 'BertModel')['rotary_embeddings'] is True
    # the checkpoint record: every architecture field, dropout left out
    model = tiny_model(use_decoder=False, use_classifier=False)
    model.encoder.config = RotaryConfig(**model.config, rotary=True)
    record = train_checkpoint.describe_model(model)['config']
    assert list(record) == list(RotaryConfig.architecture_fields()) and record['rotary'] is True


def test_without_changes_the_consumers_list_exactly_the_config_fields():
    assert list(gluonbert.list_models()['bert_2_128_2']) == list(BERTConfig.field_names())
    with pytest.raises(ValueError, match='known: ' + ', '.join(BERTConfig.field_names())):
        gluonbert.register_model('bad', layers=3)
    hf_config = hf.hparams_to_config(BERTConfig(**TINY), 'BertModel')
    assert {k: hf_config[k] for k in BERTConfig().to_hf_dict()} == \
        BERTConfig(**TINY).to_hf_dict()
    assert hf.config_to_hparams(hf_config) == BERTConfig(**TINY).resolved().to_dict()
    record = train_checkpoint.describe_model(tiny_model())['config']
    assert list(record) == list(BERTConfig.architecture_fields())
    assert 'dropout' not in record and 'attention_dropout' not in record
    assert np.isclose(record['layer_norm_eps'], 1e-12)


def test_registered_shapes_are_configs_and_overrides_keep_the_rule():
    hparams = registry.get_hparams('bert_2_128_2', dropout=0.3)
    assert isinstance(hparams, BERTConfig)
    assert (hparams.num_layers, hparams.units, hparams.attention_dropout) == (2, 128, None)
    model, _ = gluonbert.get_model('bert_2_128_2', pretrained=False, dropout=0.3,
                                   use_decoder=False, use_classifier=False, ctx=mx.cpu())
    assert (model.config.dropout, model.config.attention_dropout) == (0.3, 0.3)
