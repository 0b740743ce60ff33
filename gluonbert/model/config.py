"""BERTConfig: every BERT hyperparameter in one place, with defaults, validation and the
HuggingFace mapping; a configuration that cannot work fails at construction.

Adding a hyperparameter means adding one field here (its default, whether it changes the
computation, its HuggingFace name) and using it in the encoder: the registry, the converters
and the checkpoint records all derive their field lists from this class.
"""
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .activations import ACTIVATIONS

# HuggingFace `hidden_act` -> gluonbert activation, and back for writing a config.json.
HF_ACTIVATIONS = {'gelu': 'gelu', 'gelu_python': 'gelu', 'gelu_new': 'gelu_tanh',
                  'gelu_pytorch_tanh': 'gelu_tanh', 'relu': 'relu'}
HF_WRITE_ACTIVATIONS = {'gelu': 'gelu', 'gelu_tanh': 'gelu_new', 'relu': 'relu'}


def _field(default, *, hf, architecture=True, hf_required=True):
    """A hyperparameter: its default, its HuggingFace config.json name, and whether it changes
    the computation (a checkpoint and a model must agree on it) or only training (dropout).
    hf_required=False: a config.json may omit it, and then the default applies."""
    return field(default=default, metadata=dict(hf=hf, architecture=architecture,
                                                hf_required=hf_required))


@dataclass(frozen=True)
class BERTConfig(Mapping):
    """BERT's hyperparameters (BERT-base's by default), validated; immutable.

    Also a read-only mapping (`config['units']`, `config.get(...)`, `dict(config)`,
    `BERTEncoder(**config)`) as GluonNLP's and earlier gluonbert's `model.config` dict was.
    attention_dropout=None means "the same as dropout"; BERTEncoder.config has it filled in.
    """
    vocab_size: int = _field(30522, hf='vocab_size')
    units: int = _field(768, hf='hidden_size')
    hidden_size: int = _field(3072, hf='intermediate_size')
    num_heads: int = _field(12, hf='num_attention_heads')
    num_layers: int = _field(12, hf='num_hidden_layers')
    max_length: int = _field(512, hf='max_position_embeddings')
    dropout: float = _field(0.1, hf='hidden_dropout_prob', architecture=False, hf_required=False)
    attention_dropout: float | None = _field(None, hf='attention_probs_dropout_prob',
                                             architecture=False, hf_required=False)
    layer_norm_eps: float = _field(1e-12, hf='layer_norm_eps', hf_required=False)
    activation: str = _field('gelu', hf='hidden_act')
    token_type_vocab_size: int = _field(2, hf='type_vocab_size')

    POSITIVE_INT_FIELDS: ClassVar[tuple] = ('vocab_size', 'units', 'hidden_size', 'num_heads',
                                            'num_layers', 'max_length', 'token_type_vocab_size')
    _FLOAT_FIELDS: ClassVar[tuple] = ('dropout', 'attention_dropout', 'layer_norm_eps')

    def __post_init__(self):
        """Raise ValueError naming the field(s) and the fix if the configuration cannot work."""
        for name in self.POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'{name}={value!r} must be a positive integer')
        if self.units % self.num_heads:
            divisors = [d for d in range(1, self.units + 1) if self.units % d == 0 and d <= 64]
            raise ValueError(
                f'units={self.units} is not divisible by num_heads={self.num_heads}: every '
                f'attention head gets units/num_heads features. Use num_heads in {divisors} or '
                f'make units a multiple of {self.num_heads}.')
        for name in ('dropout', 'attention_dropout'):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0.0 <= value < 1.0):
                raise ValueError(f'{name}={value!r} must be in [0, 1)')
        if not _is_number(self.layer_norm_eps) or not self.layer_norm_eps > 0:
            raise ValueError(f'layer_norm_eps={self.layer_norm_eps!r} must be positive '
                             f'(BERT uses 1e-12)')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'activation={self.activation!r} is unknown; choose one of '
                             f'{", ".join(ACTIVATIONS)}')

    # -- the field lists, derived from the dataclass fields --------------------------------
    @classmethod
    def field_names(cls) -> tuple:
        """Every hyperparameter's name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def architecture_fields(cls) -> tuple:
        """The fields that change the computation (not dropout): a checkpoint and the model it
        is loaded into must agree on all of them."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata['architecture'])

    @classmethod
    def check_names(cls, names: Iterable[str], problem: str = 'unknown hyperparameter(s)',
                    context: str = '') -> None:
        """Raise ValueError naming the unknown ones among `names` and listing the known:
        '{problem} [names]{context}; known: ...'."""
        unknown = sorted(set(names) - set(cls.field_names()))
        if unknown:
            raise ValueError(f'{problem} {unknown}{context}; known: '
                             f'{", ".join(cls.field_names())}')

    # -- dict form (the on-disk `hparams` of checkpoints) ------------------------------------
    def to_dict(self) -> dict:
        """{field: value} in declaration order (JSON-able)."""
        return {name: getattr(self, name) for name in self.field_names()}

    @classmethod
    def from_dict(cls, values: Mapping) -> 'BERTConfig':
        """A BERTConfig from {field: value}; missing fields take the defaults, unknown keys are
        refused (named)."""
        cls.check_names(values)
        return cls(**values)

    def replace(self, **changes: Any) -> 'BERTConfig':
        """A copy with `changes` applied, validated (unknown names refused)."""
        self.check_names(changes)
        return dataclasses.replace(self, **changes)

    def resolved(self) -> 'BERTConfig':
        """This configuration with attention_dropout filled in (None -> dropout)."""
        if self.attention_dropout is not None:
            return self
        return dataclasses.replace(self, attention_dropout=self.dropout)

    # -- HuggingFace config.json --------------------------------------------------------------
    def to_hf_dict(self) -> dict:
        """The BertConfig fields of this configuration, as transformers names them."""
        values = self.resolved().to_dict()
        values['activation'] = HF_WRITE_ACTIVATIONS[values['activation']]
        return {f.metadata['hf']: values[f.name] for f in dataclasses.fields(self)}

    @classmethod
    def from_hf_dict(cls, config_json: Mapping, source: str = 'config.json') -> 'BERTConfig':
        """A HuggingFace / Google BERT config (dict of config.json or bert_config.json) ->
        BERTConfig; ValueError names `source` and the problem (not a BERT, a missing field,
        an unsupported activation, an invalid value)."""
        if config_json.get('model_type', 'bert') != 'bert':
            raise ValueError(f'{source}: model_type is {config_json["model_type"]!r}; only BERT '
                             f'checkpoints can be converted')
        if config_json.get('position_embedding_type', 'absolute') != 'absolute':
            raise ValueError(f'{source}: position_embedding_type '
                             f'{config_json["position_embedding_type"]!r} is not supported '
                             f'(BERT uses absolute)')
        hf_fields = dataclasses.fields(cls)
        missing = [f.metadata['hf'] for f in hf_fields
                   if f.metadata['hf_required'] and f.metadata['hf'] not in config_json]
        if missing:
            raise ValueError(f'{source} lacks required field(s): {", ".join(missing)}')
        # an optional field that is absent or null takes the default
        values = {f.name: config_json[f.metadata['hf']] for f in hf_fields
                  if f.metadata['hf'] in config_json and
                  (f.metadata['hf_required'] or config_json[f.metadata['hf']] is not None)}
        if values['activation'] not in HF_ACTIVATIONS:
            raise ValueError(f'{source}: hidden_act {values["activation"]!r} is not supported; '
                             f'supported: {", ".join(HF_ACTIVATIONS)}')
        values['activation'] = HF_ACTIVATIONS[values['activation']]
        for name in cls._FLOAT_FIELDS:
            if name in values and _is_number(values[name]):
                values[name] = float(values[name])
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f'{source}: {err}') from None

    # -- the read-only Mapping interface ------------------------------------------------------
    def __getitem__(self, name):
        if name not in self.field_names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self):
        return iter(self.field_names())

    def __len__(self):
        return len(self.field_names())

    def __eq__(self, other):
        """Equal to another BERTConfig or a mapping with the same fields and values (a dict
        compares as GluonNLP's config dict did)."""
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
