"""Vocabularies: `Vocab` (general, GluonNLP 0.10's `nlp.Vocab`) and `BERTVocab` (BERT's tokens).

Two ways to build one. From token counts (GluonNLP's constructor): the unknown token first, then
the special and reserved tokens, then the counted tokens by falling frequency (ties by token).
From tokens in id order (`BERTVocab(tokens)`, `BERTVocab.from_file`): Google/HuggingFace
`vocab.txt` order, where `[PAD]`=0 and `[CLS]`=101 for bert-base-uncased. GluonNLP 0.10's JSON
(`to_json`/`from_json`) stores `idx_to_token`, so both kinds keep their ids through it.
"""
from __future__ import annotations

import collections.abc
import json
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from ..files import write_text

UNKNOWN_TOKEN = '[UNK]'
PADDING_TOKEN = '[PAD]'
CLS_TOKEN = '[CLS]'
SEP_TOKEN = '[SEP]'
MASK_TOKEN = '[MASK]'

# BERTVocab's identifiers in GluonNLP 0.10's order (its JSON and its id order follow it).
SPECIAL_IDENTIFIERS = ('cls_token', 'sep_token', 'mask_token', 'padding_token', 'bos_token',
                       'eos_token')
# The tokens BERT's input layout and masked-LM objective cannot do without.
REQUIRED_BERT_SPECIALS = ('padding_token', 'cls_token', 'sep_token', 'mask_token')


def is_token_counter(obj: object) -> bool:
    """True for None or a mapping of token -> count (a Counter); False for tokens in id order."""
    if obj is None or isinstance(obj, collections.Counter):
        return True
    if not isinstance(obj, collections.abc.Mapping):
        return False
    return all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in obj.values())


def _rank_counted_tokens(counter, max_size, min_freq, taken):
    """Counted tokens not in `taken`, by falling count then token, at most max_size of them."""
    if not isinstance(min_freq, numbers.Integral) or min_freq < 1:
        raise ValueError(f'min_freq must be an integer >= 1; got {min_freq!r}')
    if max_size is not None and (not isinstance(max_size, numbers.Integral) or max_size < 0):
        raise ValueError(f'max_size must be None or an integer >= 0; got {max_size!r}')
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    tokens = []
    for token, freq in ranked:
        if freq < min_freq or (max_size is not None and len(tokens) == max_size):
            break
        if token not in taken:
            tokens.append(token)
    return tokens


class Vocab:
    """Token <-> id mapping. `vocab[token]` or `vocab[[tokens]]` -> id(s); an unknown token ->
    the unknown token's id (a KeyError when unknown_token is None).

    counter: token counts (`gluonbert.data.count_tokens`); the most frequent get the lowest ids
    after the unknown, special and reserved tokens. max_size: at most this many counted tokens;
    min_freq: drop counted tokens seen fewer times. `xxx_token=` keywords name special tokens,
    exposed as attributes (`vocab.padding_token`). token_to_idx: move some tokens to given ids.
    """

    _required_identifiers = ()

    def __init__(self, counter: Mapping | None = None, max_size: int | None = None,
                 min_freq: int = 1, unknown_token: str | None = '<unk>', *,
                 padding_token: str | None = '<pad>', bos_token: str | None = '<bos>',
                 eos_token: str | None = '<eos>', reserved_tokens: list[str] | None = None,
                 token_to_idx: Mapping[str, int] | None = None, **special_tokens: str | None):
        identifiers = dict(special_tokens, padding_token=padding_token, bos_token=bos_token,
                           eos_token=eos_token)
        self._build_from_counter(counter, max_size, min_freq, unknown_token, identifiers,
                                 reserved_tokens, token_to_idx)

    # -- construction -------------------------------------------------------------------------

    def _build_from_counter(self, counter, max_size, min_freq, unknown_token, identifiers,
                            reserved_tokens, token_to_idx):
        if not is_token_counter(counter):
            raise TypeError(f'counter must be a Counter of token counts (see count_tokens); got '
                            f'{type(counter).__name__}')
        reserved = list(reserved_tokens or [])
        specials = []
        for token in identifiers.values():
            if token is not None and token not in specials and token != unknown_token:
                specials.append(token)
        for token in reserved:
            if token == unknown_token:
                raise ValueError(f'reserved_tokens must not contain the unknown token {token!r}')
            if token in specials or reserved.count(token) > 1:
                raise ValueError(f'reserved token {token!r} is given twice (in reserved_tokens or '
                                 f'as a special token)')
        leading = ([unknown_token] if unknown_token is not None else []) + specials + reserved
        counted = _rank_counted_tokens(counter or {}, max_size, min_freq, set(leading))
        self._index(leading + counted, unknown_token, identifiers, reserved)
        if token_to_idx:
            self._move_tokens(token_to_idx)

    def _index(self, tokens, unknown_token, identifiers, reserved):
        """Set the tables and special-token attributes from tokens in id order."""
        self._idx_to_token = list(tokens)
        self._token_to_idx = {}
        for idx, token in enumerate(self._idx_to_token):
            if not isinstance(token, str):
                raise TypeError(f'vocabulary tokens must be str; id {idx} is {token!r}')
            if token in self._token_to_idx:
                raise ValueError(f'token {token!r} appears twice in the vocabulary (ids '
                                 f'{self._token_to_idx[token]} and {idx})')
            self._token_to_idx[token] = idx
        self._unknown_token = unknown_token
        if unknown_token is not None and unknown_token not in self._token_to_idx:
            raise ValueError(f'unknown_token={unknown_token!r} is not in the vocabulary')
        for name, token in identifiers.items():
            if not name.endswith('_token') or name.startswith('_') or hasattr(type(self), name):
                raise ValueError(f'special tokens are keyword arguments named like `xxx_token`; '
                                 f'{name!r} is not allowed')
            if token is None and name in self._required_identifiers:
                raise ValueError(f'BERT needs a {name}; got None')
            if token is not None and token not in self._token_to_idx:
                raise ValueError(f'special token {name}={token!r} is not in the vocabulary')
            setattr(self, name, token)
        self._identifiers_to_tokens = dict(identifiers)
        for token in reserved:
            if token not in self._token_to_idx:
                raise ValueError(f'reserved token {token!r} is not in the vocabulary')
        specials = [t for t in identifiers.values() if t is not None and t != unknown_token]
        self._reserved_tokens = list(dict.fromkeys(specials + list(reserved)))

    def _move_tokens(self, token_to_idx):
        """Give each token of token_to_idx its id; the token that held that id takes the old one."""
        unknown = [t for t in token_to_idx if t not in self._token_to_idx]
        if unknown:
            raise ValueError(f'token_to_idx can only place tokens of the vocabulary; not in it: '
                             f'{unknown[:5]}')
        ids = list(token_to_idx.values())
        if len(set(ids)) != len(ids):
            raise ValueError('token_to_idx gives the same id to two tokens')
        bad = [i for i in ids if not isinstance(i, numbers.Integral) or not 0 <= i < len(self)]
        if bad:
            raise ValueError(f'token_to_idx ids must be in [0, {len(self)}); got {bad[:5]}')
        for token, new_idx in token_to_idx.items():
            old_idx = self._token_to_idx[token]
            displaced = self._idx_to_token[new_idx]
            self._idx_to_token[old_idx], self._idx_to_token[new_idx] = displaced, token
            self._token_to_idx[displaced], self._token_to_idx[token] = old_idx, new_idx

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], unknown_token: str | None = '<unk>',
                    reserved_tokens: list[str] | None = None,
                    **special_tokens: str | None) -> Vocab:
        """Tokens in id order (all kept, nothing added); special tokens must be among them."""
        vocab = cls.__new__(cls)
        vocab._index(tokens, unknown_token, special_tokens, list(reserved_tokens or []))
        return vocab

    # -- serialization ------------------------------------------------------------------------

    @classmethod
    def from_json(cls, path_or_json_str: str) -> Vocab:
        """Read GluonNLP 0.10's vocabulary JSON (a file path or the JSON text); ids = its order."""
        text = path_or_json_str
        if not text.lstrip().startswith('{'):
            if not os.path.isfile(text):
                raise FileNotFoundError(f'vocabulary JSON not found (and the argument is not JSON '
                                        f'text): {text}')
            with open(text, encoding='utf-8') as f:
                text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f'vocabulary JSON is not valid JSON: {err}') from None
        return cls._from_serialized(data)

    @classmethod
    def _from_serialized(cls, data):
        idx_to_token = _checked_id_order(data)
        identifiers = dict(data.get('identifiers_to_tokens') or {})
        # GluonNLP < 0.8 wrote the special tokens as top-level keys instead.
        for name in SPECIAL_IDENTIFIERS:
            if data.get(name) is not None:
                if identifiers.get(name, data[name]) != data[name]:
                    raise ValueError(f'vocabulary JSON gives {name} twice with different values')
                identifiers[name] = data[name]
        unknown = data.get('unknown_token')
        specials = {unknown} | set(identifiers.values())
        reserved = [t for t in (data.get('reserved_tokens') or []) if t not in specials]
        for name in cls._required_identifiers:
            identifiers.setdefault(name, None)  # a missing BERT token is reported by _index
        vocab = cls.__new__(cls)
        vocab._index(idx_to_token, unknown, identifiers, reserved)
        return vocab

    def to_json(self) -> str:
        """Serialize to GluonNLP 0.10's JSON string (readable by gluonnlp's `from_json`)."""
        return json.dumps(dict(idx_to_token=self._idx_to_token, token_to_idx=self._token_to_idx,
                               reserved_tokens=self._reserved_tokens or None,
                               unknown_token=self._unknown_token,
                               identifiers_to_tokens=self._identifiers_to_tokens))

    # -- lookups ------------------------------------------------------------------------------

    @property
    def idx_to_token(self) -> list[str]:
        """Tokens in id order."""
        return self._idx_to_token

    @property
    def token_to_idx(self) -> dict:
        """Token -> id."""
        return self._token_to_idx

    @property
    def unknown_token(self) -> str | None:
        """The token unknown tokens map to (None: looking one up is a KeyError)."""
        return self._unknown_token

    @property
    def reserved_tokens(self) -> list[str]:
        """The special tokens (except the unknown token) and then the reserved tokens."""
        return self._reserved_tokens

    @property
    def special_tokens(self) -> dict:
        """Identifier -> token for the unknown token and every `xxx_token` identifier."""
        return dict(unknown_token=self._unknown_token, **self._identifiers_to_tokens)

    def __len__(self):
        return len(self._idx_to_token)

    def __contains__(self, token):
        return token in self._token_to_idx

    def __iter__(self):
        return iter(self._idx_to_token)

    def __eq__(self, other):
        return (type(other) is type(self) and self._idx_to_token == other.idx_to_token and
                self.special_tokens == other.special_tokens)

    def __hash__(self):
        return hash((len(self._idx_to_token), tuple(self._idx_to_token[:50]),
                     self._unknown_token))

    def __getitem__(self, tokens):
        get = self._token_to_idx.get
        if self._unknown_token is None:
            if isinstance(tokens, str):
                return self._lookup_known(tokens)
            return [self._lookup_known(t) for t in tokens]
        unk = self._token_to_idx[self._unknown_token]
        if isinstance(tokens, str):
            return get(tokens, unk)
        return [get(t, unk) for t in tokens]

    def _lookup_known(self, token):
        try:
            return self._token_to_idx[token]
        except KeyError:
            raise KeyError(f'token {token!r} is not in the vocabulary, which has no unknown_token '
                           f'to map it to') from None

    def __call__(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Same as `vocab[tokens]` (GluonNLP's Vocab is callable)."""
        return self[tokens]

    def to_indices(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token or list of tokens -> id or list of ids (GluonNLP's name for `vocab[tokens]`)."""
        return self[tokens]

    def to_tokens(self, indices: int | Sequence[int] | np.ndarray) -> str | list[str]:
        """Id or list/array of ids -> token or list of tokens; an id out of range is an error."""
        size = len(self._idx_to_token)
        if isinstance(indices, numbers.Integral):
            if not 0 <= indices < size:
                raise ValueError(f'token id {indices} is out of range for a vocabulary of {size}')
            return self._idx_to_token[indices]
        if isinstance(indices, np.ndarray):
            if indices.ndim != 1:
                raise ValueError(f'to_tokens takes an id or a 1-D sequence of ids; got an array '
                                 f'of shape {indices.shape}')
            indices = indices.tolist()
        out = []
        for i in indices:
            if not isinstance(i, numbers.Integral) or not 0 <= i < size:
                raise ValueError(f'token id {i!r} is out of range for a vocabulary of {size}')
            out.append(self._idx_to_token[i])
        return out

    def __repr__(self):
        return (f'{type(self).__name__}(size={len(self)}, unk={self._unknown_token!r}, '
                f'reserved={self._reserved_tokens!r})')


def _checked_id_order(data):
    """idx_to_token of a GluonNLP JSON dict, checked against its token_to_idx."""
    token_to_idx = data.get('token_to_idx')
    idx_to_token = data.get('idx_to_token')
    if idx_to_token is None and token_to_idx is None:
        raise ValueError('vocabulary JSON has neither idx_to_token nor token_to_idx')
    if idx_to_token is None:
        return [t for t, _ in sorted(token_to_idx.items(), key=lambda kv: kv[1])]
    if token_to_idx is not None:
        if len(token_to_idx) != len(idx_to_token):
            raise ValueError(
                f'vocabulary JSON is inconsistent: {len(idx_to_token)} entries in idx_to_token '
                f'but {len(token_to_idx)} in token_to_idx (GluonNLP < 0.7 wrote such corrupted '
                f'vocabularies)')
        for idx, token in enumerate(idx_to_token):
            if token_to_idx.get(token) != idx:
                raise ValueError(f'vocabulary JSON is inconsistent: idx_to_token[{idx}] = '
                                 f'{token!r} but token_to_idx[{token!r}] = '
                                 f'{token_to_idx.get(token)}')
    return idx_to_token


class BERTVocab(Vocab):
    """A Vocab with BERT's special tokens ([UNK], [PAD], [CLS], [SEP], [MASK]).

    The first argument is either a Counter of token counts (GluonNLP 0.10's constructor, with its
    keyword arguments) or the tokens in id order (all kept; the special tokens must be among
    them), as `BERTVocab.from_file` reads them from a `vocab.txt`.
    """

    _required_identifiers = REQUIRED_BERT_SPECIALS

    def __init__(self, counter: Mapping | Iterable[str] | None = None,
                 max_size: int | None = None, min_freq: int = 1,
                 unknown_token: str | None = UNKNOWN_TOKEN,
                 padding_token: str | None = PADDING_TOKEN, bos_token: str | None = None,
                 eos_token: str | None = None, mask_token: str | None = MASK_TOKEN,
                 sep_token: str | None = SEP_TOKEN, cls_token: str | None = CLS_TOKEN,
                 reserved_tokens: list[str] | None = None,
                 token_to_idx: Mapping[str, int] | None = None,
                 **extra_special_tokens: str | None):
        identifiers = dict(cls_token=cls_token, sep_token=sep_token, mask_token=mask_token,
                           padding_token=padding_token, bos_token=bos_token, eos_token=eos_token,
                           **extra_special_tokens)
        if is_token_counter(counter):
            self._build_from_counter(counter, max_size, min_freq, unknown_token, identifiers,
                                     reserved_tokens, token_to_idx)
            return
        if max_size is not None or min_freq != 1 or token_to_idx:
            raise ValueError('max_size, min_freq and token_to_idx apply to a Counter of token '
                             'counts; a list of tokens is kept whole, in its order')
        if isinstance(counter, str):
            raise TypeError('BERTVocab takes a Counter or a list of tokens, not a str; for a '
                            'vocab.txt file use BERTVocab.from_file(path)')
        self._index(counter, unknown_token, identifiers, list(reserved_tokens or []))

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], unknown_token: str | None = UNKNOWN_TOKEN,
                    reserved_tokens: list[str] | None = None,
                    **special_tokens: str | None) -> BERTVocab:
        """Tokens in id order (all kept); same as `BERTVocab(tokens, ...)`."""
        return cls(list(tokens), unknown_token=unknown_token, reserved_tokens=reserved_tokens,
                   **special_tokens)

    @classmethod
    def from_file(cls, path: str, **special_tokens: str | None) -> BERTVocab:
        """Read a Google/HuggingFace `vocab.txt`: one token per line, the line number is its id."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f'vocabulary file not found: {path}')
        with open(path, encoding='utf-8') as f:
            tokens = [line.rstrip('\r\n') for line in f]
        while tokens and tokens[-1] == '':
            tokens.pop()  # a trailing newline is not a token
        return cls(tokens, **special_tokens)

    @classmethod
    def from_sentencepiece(cls, path: str, mask_token: str = MASK_TOKEN,
                           sep_token: str = SEP_TOKEN, cls_token: str = CLS_TOKEN,
                           unknown_token: str | None = None,
                           padding_token: str | None = None, bos_token: str | None = None,
                           eos_token: str | None = None,
                           reserved_tokens: list[str] | None = None) -> BERTVocab:
        """A SentencePiece model's pieces keep their ids; BERT tokens it lacks are appended.

        unknown/padding/bos/eos default to the model's own pieces (an explicit different one is
        an error). Needs the `sentencepiece` package.
        """
        try:
            import sentencepiece
        except ImportError:
            raise ImportError('BERTVocab.from_sentencepiece needs the sentencepiece package: '
                              'pip install sentencepiece') from None
        processor = sentencepiece.SentencePieceProcessor()
        if not processor.Load(os.path.expanduser(path)):
            raise ValueError(f'cannot load the SentencePiece model {path}')
        pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]

        def model_piece(name, piece_id, given):
            if piece_id < 0:
                return given
            piece = processor.IdToPiece(piece_id)
            if given is not None and given != piece:
                raise ValueError(f'{name}={given!r} but the SentencePiece model has {piece!r}')
            return piece

        identifiers = dict(cls_token=cls_token, sep_token=sep_token, mask_token=mask_token,
                           padding_token=model_piece('padding_token', processor.pad_id(),
                                                     padding_token),
                           bos_token=model_piece('bos_token', processor.bos_id(), bos_token),
                           eos_token=model_piece('eos_token', processor.eos_id(), eos_token))
        unknown_token = model_piece('unknown_token', processor.unk_id(), unknown_token)
        extra = [t for t in list(identifiers.values()) + list(reserved_tokens or [])
                 if t is not None and t != unknown_token]
        tokens = pieces + [t for t in dict.fromkeys(extra) if t not in set(pieces)]
        return cls(tokens, unknown_token=unknown_token, reserved_tokens=reserved_tokens,
                   **identifiers)

    def to_file(self, path: str) -> None:
        """Write a `vocab.txt` (one token per line, in id order)."""
        for token in self.idx_to_token:
            if '\n' in token or '\r' in token:
                raise ValueError(f'token {token!r} contains a line break; vocab.txt cannot hold '
                                 f'it')
        write_text(path, ''.join(token + '\n' for token in self.idx_to_token))


class VocabLike(Protocol):
    """What `as_vocab` accepts: a gluonbert Vocab, or any vocabulary with GluonNLP 0.10's
    `idx_to_token` and `to_json()` (a GluonNLP vocabulary object)."""

    @property
    def idx_to_token(self) -> list[str]:
        """Tokens in id order."""

    def to_json(self) -> str:
        """GluonNLP 0.10's vocabulary JSON."""


def as_vocab(vocab: VocabLike) -> Vocab:
    """A gluonbert Vocab/BERTVocab as is; a GluonNLP 0.10 vocabulary object converted (same ids)."""
    if isinstance(vocab, Vocab):
        return vocab
    if hasattr(vocab, 'idx_to_token') and callable(getattr(vocab, 'to_json', None)):
        is_bert = all(hasattr(vocab, name) for name in ('cls_token', 'sep_token', 'mask_token'))
        return (BERTVocab if is_bert else Vocab).from_json(vocab.to_json())
    raise TypeError(f'expected a vocabulary (gluonbert BERTVocab/Vocab, e.g. '
                    f'BERTVocab.from_file(path), or a GluonNLP one); got {type(vocab).__name__}')


def bundled_vocab_path(name: str = 'en_uncased') -> str:
    """Path of a vocabulary shipped with gluonbert (`en_uncased`: Google's BERT uncased, 30,522)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'vocabs', name + '.txt')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no bundled vocabulary named {name!r} (looked for {path})')
    return path


__all__ = ['Vocab', 'BERTVocab', 'VocabLike', 'as_vocab', 'bundled_vocab_path', 'is_token_counter',
           'UNKNOWN_TOKEN', 'PADDING_TOKEN', 'CLS_TOKEN', 'SEP_TOKEN', 'MASK_TOKEN']
