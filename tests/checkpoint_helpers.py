"""Shared pieces of the converter tests: a tiny vocabulary, random HF models, padded batches."""
import os

import mxnet as mx
import numpy as np

from gluonbert.data import BERTVocab
from conftest import TINY

TINY_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + \
    [f'tok{i}' for i in range(TINY['vocab_size'] - 5)]
# A padded batch: lengths 10, 6 and 2 of 10 positions; masked positions for the MLM head.
LENGTHS = [10, 6, 2]
MASKED = [[1, 0, 9], [5, 2, 2], [0, 1, 0]]


def tiny_vocab():
    """The 50-token vocabulary matching conftest.TINY."""
    return BERTVocab(TINY_TOKENS)


def write_vocab(directory, tokens=TINY_TOKENS):
    """Write tokens as `directory/vocab.txt`."""
    with open(os.path.join(directory, 'vocab.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(t + '\n' for t in tokens))


def hf_config(**changes):
    """A transformers BertConfig with conftest.TINY's shape."""
    import transformers
    fields = dict(vocab_size=TINY['vocab_size'], hidden_size=TINY['units'],
                  num_hidden_layers=TINY['num_layers'], num_attention_heads=TINY['num_heads'],
                  intermediate_size=TINY['hidden_size'],
                  max_position_embeddings=TINY['max_length'])
    fields.update(changes)
    return transformers.BertConfig(**fields)


def random_hf_model(cls, seed=0, **config_changes):
    """A transformers BERT model of class `cls` with every parameter N(0, 0.3), in eval mode."""
    import torch
    torch.manual_seed(seed)
    model = cls(hf_config(**config_changes)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.3)
    return model


def batch_arrays(seed=0, vocab_size=TINY['vocab_size'], seq_len=10, lengths=LENGTHS):
    """(ids, types, lengths) as numpy int64 arrays, padded with id 0 beyond each length."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, vocab_size, size=(len(lengths), seq_len))
    types = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
        types[row, length // 2:length] = 1
    return ids.astype('int64'), types.astype('int64'), np.array(lengths, dtype='int64')


def hf_forward(model, ids, types, lengths, **kwargs):
    """Run a transformers model on numpy inputs with the matching attention mask."""
    import torch
    mask = (np.arange(ids.shape[1])[None] < lengths[:, None]).astype('int64')
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                     attention_mask=torch.tensor(mask), **kwargs)


def nd(*arrays):
    """numpy -> mx.nd arrays."""
    return tuple(mx.nd.array(a) for a in arrays)


def assert_valid_close(ours, theirs, lengths, atol=1e-4):
    """Compare (batch, seq_len, ...) outputs at the valid positions only."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(ours[row, :length], theirs[row, :length], atol=atol, rtol=0)


def gather_masked(logits, masked):
    """(batch, seq_len, vocab) -> (batch, num_masked, vocab) at the masked positions."""
    return np.stack([logits[row, positions] for row, positions in enumerate(masked)])


def gluonnlp_model(use_pooler=True, use_decoder=True, use_classifier=True):
    """gluonnlp 0.10's own BERTModel of conftest.TINY's shape with N(0, 0.3) weights, and its
    BERTVocab (ids in gluonnlp's order, not TINY_TOKENS')."""
    import gluonnlp as nlp
    vocab = nlp.vocab.BERTVocab(nlp.data.count_tokens(TINY_TOKENS[5:]))
    encoder = nlp.model.bert.BERTEncoder(num_layers=TINY['num_layers'], units=TINY['units'],
                                         hidden_size=TINY['hidden_size'],
                                         max_length=TINY['max_length'],
                                         num_heads=TINY['num_heads'], dropout=0.0)
    model = nlp.model.bert.BERTModel(encoder, vocab_size=len(vocab), units=TINY['units'],
                                     embed_size=TINY['units'], token_type_vocab_size=2,
                                     use_pooler=use_pooler, use_decoder=use_decoder,
                                     use_classifier=use_classifier)
    model.initialize(init=mx.init.Normal(0.3))
    model(mx.nd.ones((1, 4)), mx.nd.zeros((1, 4)), mx.nd.array([4]),
          mx.nd.zeros((1, 1)) if use_decoder else None)  # finish deferred shapes
    return model, vocab
