"""Shared fixtures: seeded RNGs and tiny BERT configurations."""
import os

import mxnet as mx
import numpy as np
import pytest

from gluonbert.model import BERTEncoder, BERTModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data')
SLICE = os.path.join(REPO, 'data', 'sst2')  # the SST-2 slice committed in the repo

TINY = dict(vocab_size=50, units=16, hidden_size=32, num_heads=4, num_layers=2, max_length=24,
            dropout=0.0)


def google_longest_first(len_a, len_b, max_tokens):
    """Google's reference pair truncation, one token at a time (from b on ties) -> lengths."""
    while len_a + len_b > max_tokens:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def sst2_dev_sentences():
    """The SST-2 dev sentences of ../shared/data, in file order (skips when it is absent)."""
    path = shared_path('glue', 'SST-2', 'dev.tsv')
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\n').split('\t')[0] for line in f][1:]


def shared_path(*parts):
    """Path under ../shared/data; skips the test with a clear message when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f'real data not found at {path} (../shared/data relative to the repo)')
    return path


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same RNG state."""
    mx.random.seed(7)
    np.random.seed(7)


@pytest.fixture(autouse=True)
def restore_registries():
    """Models and pretrained facts a test registers do not leak into later tests."""
    from gluonbert import registry
    from gluonbert.store import facts
    tables = (registry._MODELS, facts.GLUONNLP_PARAMS, facts.GLUONNLP_VOCABS, facts.HUB)
    saved = [dict(table) for table in tables]
    yield
    for table, copy in zip(tables, saved):
        table.clear()
        table.update(copy)


def tiny_model(use_pooler=True, use_decoder=True, use_classifier=True, **overrides):
    """An initialized tiny BERTModel (random N(0, 0.02) weights)."""
    encoder = BERTEncoder(**dict(TINY, **overrides))
    model = BERTModel(encoder, use_pooler=use_pooler, use_decoder=use_decoder,
                      use_classifier=use_classifier)
    model.initialize()
    return model


def random_batch(batch=3, seq_len=10, vocab_size=TINY['vocab_size'], lengths=None, seed=0):
    """(input_ids, token_types, valid_length) with padding beyond each valid length."""
    rng = np.random.RandomState(seed)
    lengths = lengths or [seq_len - 3 * i for i in range(batch)]
    ids = rng.randint(1, vocab_size, size=(batch, seq_len))
    types = np.zeros((batch, seq_len))
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
        types[row, length // 2:length] = 1
    return mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths)


def as_list(outputs):
    """Model outputs (one array or a tuple) -> list of numpy arrays."""
    if isinstance(outputs, mx.nd.NDArray):
        return [outputs.asnumpy()]
    return [o.asnumpy() for o in outputs]
