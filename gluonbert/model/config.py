"""Validation of BERT hyperparameters: a configuration that cannot work fails at construction."""
from .activations import ACTIVATIONS

POSITIVE_INT_FIELDS = ('vocab_size', 'units', 'hidden_size', 'num_heads', 'num_layers',
                       'max_length', 'token_type_vocab_size')


def validate_config(vocab_size, units, hidden_size, num_heads, num_layers, max_length,
                    dropout, layer_norm_eps, activation, token_type_vocab_size=2,
                    attention_dropout=None):
    """Raise ValueError naming the field(s) and the fix if the configuration cannot work."""
    values = dict(vocab_size=vocab_size, units=units, hidden_size=hidden_size,
                  num_heads=num_heads, num_layers=num_layers, max_length=max_length,
                  token_type_vocab_size=token_type_vocab_size)
    for field in POSITIVE_INT_FIELDS:
        value = values[field]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f'{field}={value!r} must be a positive integer')
    if units % num_heads:
        divisors = [d for d in range(1, units + 1) if units % d == 0 and d <= 64]
        raise ValueError(
            f'units={units} is not divisible by num_heads={num_heads}: every attention head gets '
            f'units/num_heads '
            f'features. Use num_heads in {divisors} or make units a multiple of {num_heads}.')
    for field, value in (('dropout', dropout), ('attention_dropout', attention_dropout)):
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f'{field}={value!r} must be in [0, 1)')
    if not layer_norm_eps > 0:
        raise ValueError(f'layer_norm_eps={layer_norm_eps!r} must be positive (BERT uses 1e-12)')
    if activation not in ACTIVATIONS:
        raise ValueError('activation={!r} is unknown; choose one of {}'.format(
            activation, ', '.join(ACTIVATIONS)))
