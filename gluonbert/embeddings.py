"""Sentence embeddings the sentence-transformers way: `SentenceEncoder(model).encode(sentences)`,
`cos_sim(a, b)` and `semantic_search(queries, corpus)`.

    encoder = gluonbert.SentenceEncoder('all_minilm_l6_v2')   # or a save_pretrained folder
    corpus = encoder.encode(sentences, normalize=True)         # (n, units), input order
    hits = gluonbert.semantic_search(encoder.encode(['a query']), corpus, top_k=5)
    # hits[0] == [{'corpus_id': 3, 'score': 0.71}, ...], best first

Vectors are the mean of the last layer's hidden states over the valid tokens ([CLS] and [SEP]
included), as sentence-transformers' all-MiniLM-L6-v2 pools; pooling='cls' takes the [CLS]
vector, pooling='pooler' the backbone's pooler output. Sentences are tokenized, sorted by
length into batches (little padding computed) and returned in input order;
`gluonbert.inference.embed` runs through the same `encode_texts`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock
from numpy.typing import ArrayLike

from .batched import ModelSource, backbone, load_model, prepare_for_inference, run_batched
from .data.tokenizer import BERTTokenizer
from .data.transforms import BERTSentenceTransform
from .data.vocab import BERTVocab
from .model.bert import BERTModel
from .model.task_heads import mean_over_valid

POOLINGS = ('mean', 'cls', 'pooler')
Tensor = mx.nd.NDArray | mx.sym.Symbol  # what a HybridBlock takes and returns

__all__ = ['SentenceEncoder', 'SentencePooler', 'cos_sim', 'encode_texts', 'semantic_search']


class SentencePooler(HybridBlock):
    """A BERT backbone's encoder plus pooling: (batch, seq_len) ids, types, (batch,) lengths
    -> (batch, units) sentence vectors; pooling=None: token vectors (batch, seq_len, units)."""

    def __init__(self, bert: BERTModel, pooling: str | None = 'mean', **kwargs: Any):
        super().__init__(**kwargs)
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f'pooling must be one of {POOLINGS} or None; got {pooling!r}')
        if pooling == 'pooler' and not bert.use_pooler:
            raise ValueError("pooling='pooler' needs a backbone with a pooler (get_model(..., "
                             "use_pooler=True)); or use pooling='mean' or 'cls'")
        self.pooling = pooling
        self.units = int(bert.config['units'])
        # Only the parts that run are children: no "parameter not used" warnings, no stale
        # parameters in an export.
        self.encoder = bert.encoder
        self.pooler = bert.pooler if pooling == 'pooler' else None

    def __call__(self, input_ids: Tensor, token_types: Tensor | None = None,
                 valid_length: Tensor | None = None) -> Tensor:
        self.encoder.check_inputs(input_ids, token_types, valid_length)
        if not self.encoder.use_token_type_embed:
            token_types = None
        return super().__call__(input_ids, token_types, valid_length)

    def hybrid_forward(self, F, input_ids: Tensor, token_types: Tensor | None = None,
                       valid_length: Tensor | None = None) -> Tensor:
        """-> (batch, units), or (batch, seq_len, units) for pooling=None."""
        sequence = self.encoder(input_ids, token_types, valid_length)
        if self.pooling == 'mean':
            return mean_over_valid(F, sequence, valid_length)
        if self.pooling == 'cls':
            return F.squeeze(F.slice_axis(sequence, axis=1, begin=0, end=1), axis=1)
        if self.pooling == 'pooler':
            return self.pooler(sequence)
        return sequence


def encode_texts(forward: Callable, tokenizer: BERTTokenizer, sentences: Sequence[str],
                 max_length: int, batch_size: int = 32, ctx: mx.Context | None = None,
                 normalize: bool = False,
                 progress: bool | None = None) -> np.ndarray:
    """Sentences -> (n, units) float32 vectors in input order; `forward(ids, types, lengths)`
    returns (batch, units). Longer sentences are cut to max_length tokens."""
    sentences = _check_sentences(sentences)
    transform = BERTSentenceTransform(tokenizer, max_length, pad=False, pair=False)
    rows = [transform(text).model_inputs() for text in sentences]
    outputs = run_batched(forward, rows, batch_size, ctx, progress, desc='encode')
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.stack([out[0] for out in outputs])
    return normalize_rows(vectors) if normalize else vectors


def _check_sentences(sentences):
    """A list of str, or one clear error."""
    if isinstance(sentences, str):
        raise TypeError('expected a list of sentences; wrap one sentence in a list')
    sentences = list(sentences)
    for i, text in enumerate(sentences):
        if not isinstance(text, str):
            raise TypeError(f'sentence {i} is a {type(text).__name__}, not str')
    return sentences


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """(n, units) -> the rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# What sentence-transformers' own folders say (sentence_bert_config.json, 1_Pooling/,
# 2_Normalize) for the pretrained datasets gluonbert embeds, so encode() answers as theirs does.
SENTENCE_MODEL_SETTINGS = {
    'all_minilm_l6_v2': dict(max_length=256, pooling='mean', normalize=True),
}
_ST_POOLING_MODES = {'pooling_mode_mean_tokens': 'mean', 'pooling_mode_cls_token': 'cls'}


def sentence_transformers_settings(folder: str) -> dict:
    """max_length / pooling / normalize from a sentence-transformers folder's
    sentence_bert_config.json, 1_Pooling/config.json and modules.json ({} for other folders)."""
    settings = {}
    config = _read_json(os.path.join(folder, 'sentence_bert_config.json'))
    if config.get('max_seq_length'):
        settings['max_length'] = int(config['max_seq_length'])
    for module in _read_json(os.path.join(folder, 'modules.json')) or []:
        kind = module.get('type', '')
        if kind.endswith('.Normalize'):
            settings['normalize'] = True
        if kind.endswith('.Pooling'):
            pooling = _read_json(os.path.join(folder, module.get('path', ''), 'config.json'))
            modes = [mode for mode, on in pooling.items() if mode.startswith('pooling_mode')
                     and on]
            if len(modes) != 1 or modes[0] not in _ST_POOLING_MODES:
                raise ValueError(f'{folder}: sentence-transformers pooling {modes} is not '
                                 f'supported (only {", ".join(_ST_POOLING_MODES)}); pass '
                                 "pooling='mean' or 'cls' to choose one")
            settings['pooling'] = _ST_POOLING_MODES[modes[0]]
    return settings


def _read_json(path):
    """A JSON file's content, {} when absent."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _settings_of(model) -> dict:
    """Settings a model name or folder carries (see SENTENCE_MODEL_SETTINGS)."""
    if not isinstance(model, (str, os.PathLike)):
        return {}
    name = os.fspath(model)
    if os.path.isdir(name):
        return sentence_transformers_settings(name)
    return dict(SENTENCE_MODEL_SETTINGS.get(name, {}))


class SentenceEncoder:
    """Sentence embeddings from a BERT (sentence-transformers' SentenceTransformer API).

    model: a folder written by save_pretrained (or a transformers / sentence-transformers BERT
    folder), a pretrained dataset name such as 'all_minilm_l6_v2', a BERTModel / task head with
    vocab=, or get_model's (model, vocab) pair.
    pooling: 'mean', 'cls' or 'pooler'; max_length: tokens per sentence; normalize: whether
    encode() returns unit vectors by default. None takes what the model says: a
    sentence-transformers folder's (or dataset's, e.g. all_minilm_l6_v2: mean, 256 tokens,
    normalized, as sentence-transformers answers), else mean pooling, the folder's max length
    (else the position table's) and no normalization.
    A model this class loads is hybridized once and keeps no gradient buffers; a block you
    pass is hybridized (hybridize=False leaves it alone) and otherwise untouched.
    """

    def __init__(self, model: ModelSource, vocab: BERTVocab | None = None,
                 pooling: str | None = None, max_length: int | None = None,
                 normalize: bool | None = None, ctx: mx.Context | None = None,
                 lower: bool | None = None, hybridize: bool = True):
        self.ctx = ctx or mx.cpu()
        settings = _settings_of(model)
        block, self.info, loaded_here = load_model(model, vocab, self.ctx, lower, max_length)
        if max_length is None and 'max_length' in settings:
            limit = backbone(block).config['max_length']
            self.info = dataclasses.replace(self.info,
                                            max_length=min(settings['max_length'], limit))
        self.normalize = bool(settings.get('normalize', False) if normalize is None
                              else normalize)
        self.net = prepare_for_inference(
            SentencePooler(backbone(block), pooling or settings.get('pooling', 'mean')),
            loaded_here, hybridize)
        self.tokenizer = self.info.tokenizer()
        self.max_length = int(self.info.max_length)

    @property
    def units(self) -> int:
        """Width of the vectors."""
        return self.net.units

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32,
               normalize: bool | None = None, progress: bool | None = None,
               convert_to_numpy: bool = True) -> np.ndarray | mx.nd.NDArray:
        """Sentences -> (n, units) vectors in input order (one str -> (units,)).

        normalize: unit L2 norm (then a dot product is the cosine); None: the encoder's
        `normalize` (see the class). progress: None shows a tqdm
        bar for many sentences when stderr is a terminal. convert_to_numpy=False returns an
        mx.nd.NDArray instead.
        """
        single = isinstance(sentences, str)
        vectors = encode_texts(self.net, self.tokenizer, [sentences] if single else sentences,
                               self.max_length, batch_size, self.ctx,
                               self.normalize if normalize is None else normalize, progress)
        if vectors.size == 0:
            vectors = np.zeros((0, self.units), dtype=np.float32)
        vectors = vectors[0] if single else vectors
        return vectors if convert_to_numpy else mx.nd.array(vectors, ctx=self.ctx)

    def __repr__(self):
        return (f'SentenceEncoder(units={self.units}, pooling={self.net.pooling!r}, '
                f'max_length={self.max_length}, normalize={self.normalize})')


def _as_matrix(x, name):
    """NDArray / list / numpy, (n, units) or one (units,) vector -> float numpy (n, units)."""
    if isinstance(x, mx.nd.NDArray):
        x = x.asnumpy()
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype == np.float64 else np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f'{name} must be (n, units) embeddings or one (units,) vector; got '
                         f'shape {x.shape}')
    return x


def cos_sim(a: ArrayLike | mx.nd.NDArray, b: ArrayLike | mx.nd.NDArray) -> np.ndarray:
    """Cosine similarities: (n, units), (m, units) -> (n, m); one vector counts as one row."""
    a, b = _as_matrix(a, 'a'), _as_matrix(b, 'b')
    if a.shape[1] != b.shape[1]:
        raise ValueError(f'cos_sim: embeddings of different widths ({a.shape[1]} and '
                         f'{b.shape[1]}); encode both with the same model')
    return normalize_rows(a) @ normalize_rows(b).T


def semantic_search(query_embeddings: ArrayLike | mx.nd.NDArray,
                    corpus_embeddings: ArrayLike | mx.nd.NDArray, top_k: int = 10,
                    score_function: Callable = cos_sim) -> list[list[dict]]:
    """For each query, the top_k corpus entries by score: a list (one per query) of
    [{'corpus_id': int, 'score': float}, ...], best first (ties: lower corpus_id first)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f'top_k must be an integer >= 1; got {top_k!r}')
    scores = np.asarray(score_function(query_embeddings, corpus_embeddings))
    hits = []
    for row in scores:
        order = np.lexsort((np.arange(len(row)), -row))[:top_k]
        hits.append([{'corpus_id': int(i), 'score': float(row[i])} for i in order])
    return hits
