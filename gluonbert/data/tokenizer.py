"""BERTTokenizer: Google's BERT basic tokenization + greedy longest-match WordPiece, with offsets;
BERTBasicTokenizer: the basic tokenization alone (whitespace, punctuation, CJK split).

The work is done by HuggingFace `tokenizers` (Rust): BertNormalizer (control characters dropped,
whitespace unified, CJK characters split, lowercasing, accents stripped only when lowercasing
unless told otherwise), BertPreTokenizer (whitespace and punctuation split) and WordPiece.
Token ids of plain ASCII texts take a faster, equivalent path: a regex split plus a per-word
cache of the engine's WordPiece output (the engine's per-call cost dominates short texts).
"""
from __future__ import annotations

import collections
import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from .vocab import VocabLike, as_vocab

SUBWORD_PREFIX = '##'

# For ASCII text without control characters BERT's basic tokenization is exactly: lowercase
# (uncased), split on whitespace, and split off every printable non-alphanumeric character
# (all of them are punctuation to BERT). A regex plus a per-word cache of the engine's WordPiece
# output then gives the same ids several times faster than a call into the engine per text.
_ASCII_WORDS = re.compile(r'[A-Za-z0-9]+|[^A-Za-z0-9 \t\n\r]')
_ASCII_CONTROL_CODES = list(range(0x00, 0x09)) + list(range(0x0b, 0x20)) + [0x7f]
_WORD_CACHE_SIZE = 1 << 20
_ASCII_PUNCTUATION = frozenset(chr(c) for c in range(33, 127) if not chr(c).isalnum())

TokenizedText = collections.namedtuple('TokenizedText', ['tokens', 'ids', 'offsets'])
TokenizedText.__doc__ = ('One tokenized text: word pieces, their ids, and (start, end) character '
                         'offsets of each piece in the original string.')


def _basic_normalizer(lower, strip_accents=None, tokenize_chinese_chars=True):
    """Google's basic-tokenizer text cleanup: control characters dropped, whitespace unified,
    CJK characters spaced out, optional lowercasing and accent stripping."""
    return normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=lower if strip_accents is None else strip_accents, lowercase=lower)


class BERTBasicTokenizer:
    """Google BERT's basic tokenization (no WordPiece): `tokenizer(text)` -> list of words and
    punctuation marks. lower: lowercase and strip accents (uncased models)."""

    def __init__(self, lower: bool = True):
        self.lower = bool(lower)
        self._normalizer = _basic_normalizer(self.lower)
        self._pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def __call__(self, text: str) -> list[str]:
        """str -> list of tokens."""
        if not isinstance(text, str):
            raise TypeError(f'BERTBasicTokenizer tokenizes str; got {type(text).__name__}')
        normalized = self._normalizer.normalize_str(text)
        return [word for word, _ in self._pre_tokenizer.pre_tokenize_str(normalized)]

    tokenize = __call__

    @staticmethod
    def _is_whitespace(char: str) -> bool:
        """Space, tab, newline, carriage return or a Unicode space separator (Zs)."""
        return char in ' \t\n\r' or unicodedata.category(char) == 'Zs'

    @staticmethod
    def _is_control(char: str) -> bool:
        """A Unicode control/format character (C*), except tab, newline and carriage return."""
        return char not in '\t\n\r' and unicodedata.category(char).startswith('C')

    @staticmethod
    def _is_punctuation(char: str) -> bool:
        """Unicode punctuation (P*) or any printable non-alphanumeric ASCII character ($, `, ^)."""
        return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith('P')

    def __repr__(self):
        return f'BERTBasicTokenizer(lower={self.lower})'


class BERTTokenizer:
    """End-to-end BERT tokenizer: `tokenizer(text)` -> list of WordPiece tokens (GluonNLP's API).

    lower: lowercase the text (uncased models). strip_accents: None follows `lower` (Google's
    rule: accents are stripped for uncased models only). Words longer than
    max_input_chars_per_word characters, and words no piece sequence can cover, become [UNK].
    Text is always plain text: a literal "[SEP]" in it is tokenized, never a special token.
    vocab: any vocabulary with an unknown token (BERTVocab, Vocab, or a GluonNLP one, converted).
    lru_cache_size: how many distinct words the id cache holds (None: about a million).
    """

    def __init__(self, vocab: VocabLike, lower: bool = True, max_input_chars_per_word: int = 200,
                 lru_cache_size: int | None = None, *, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True):
        vocab = as_vocab(vocab)
        if vocab.unknown_token is None:
            raise ValueError('BERTTokenizer needs a vocabulary with an unknown_token (WordPiece '
                             'maps words it cannot split to it); build the vocabulary with '
                             'unknown_token="[UNK]"')
        if lru_cache_size is not None and (not isinstance(lru_cache_size, int) or
                                           lru_cache_size < 1):
            raise ValueError(f'lru_cache_size must be None or an integer >= 1; got '
                             f'{lru_cache_size!r}')
        self.vocab = vocab
        self.cache_size = _WORD_CACHE_SIZE if lru_cache_size is None else lru_cache_size
        self.lower = bool(lower)
        self.strip_accents = self.lower if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        _check_casing(vocab, self.lower)
        self._engine = self._build_engine()
        self._reset_word_cache()

    def _build_engine(self):
        engine = Tokenizer(WordPiece(dict(self.vocab.token_to_idx),
                                     unk_token=self.vocab.unknown_token,
                                     continuing_subword_prefix=SUBWORD_PREFIX,
                                     max_input_chars_per_word=self.max_input_chars_per_word))
        engine.normalizer = _basic_normalizer(self.lower, self.strip_accents,
                                              self.tokenize_chinese_chars)
        engine.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return engine

    def __call__(self, text: str) -> list[str]:
        """str -> list of WordPiece tokens."""
        if type(text) is str and text.isascii():
            ids = self._ascii_ids(text)
            if ids is not None:
                idx_to_token = self.vocab.idx_to_token
                return [idx_to_token[i] for i in ids]
        return self._encode(text).tokens

    tokenize = __call__

    def encode(self, text: str) -> TokenizedText:
        """str -> TokenizedText(tokens, ids, offsets); offsets index the original string."""
        enc = self._encode(text)
        return TokenizedText(enc.tokens, enc.ids, enc.offsets)

    def encode_ids(self, text: str) -> list[int]:
        """str -> list of token ids (the fastest single-text path)."""
        if type(text) is str and text.isascii():
            ids = self._ascii_ids(text)
            if ids is not None:
                return ids
        return self._encode(text).ids

    def encode_batch_ids(self, texts: Iterable[str]) -> list[list[int]]:
        """list of str -> list of id lists (ASCII texts via the word cache, others in parallel
        by the Rust engine)."""
        texts = texts if isinstance(texts, list) else list(texts)
        out, rest = [], []
        ascii_ids = self._ascii_ids
        for text in texts:
            ids = None
            if type(text) is str and text.isascii():
                ids = ascii_ids(text)
            if ids is None:
                if not isinstance(text, str):
                    raise TypeError(f'text {len(out)} is a {type(text).__name__}, not str')
                rest.append(len(out))
            out.append(ids)
        if rest:
            encodings = self._engine.encode_batch_fast([texts[i] for i in rest],
                                                       add_special_tokens=False)
            for i, enc in zip(rest, encodings):
                out[i] = enc.ids
        return out

    def _ascii_ids(self, text):
        """Ids of an ASCII text, or None when it has control characters (left to the engine)."""
        cache = self._word_ids
        words = _ASCII_WORDS.findall(text.lower() if self.lower else text)
        ids = []
        try:
            for word in words:
                ids += cache[word]
        except KeyError:
            self._cache_words(words)
            return self._ascii_ids(text)
        except TypeError:  # a control character's entry is None
            return None
        return ids

    def _cache_words(self, words):
        cache = self._word_ids
        if len(cache) >= self.cache_size + len(_ASCII_CONTROL_CODES):  # control entries stay
            self._reset_word_cache()
        for word in words:
            if word not in cache:
                cache[word] = [token.id for token in self._engine.model.tokenize(word)]

    def _reset_word_cache(self):
        # BERT drops control characters, joining their neighbours: such texts go to the engine.
        self._word_ids = {chr(c): None for c in _ASCII_CONTROL_CODES}

    def encode_batch(self, texts: Iterable[str]) -> list[TokenizedText]:
        """list of str -> list of TokenizedText (with offsets), tokenized in parallel."""
        texts = _check_texts(texts)
        return [TokenizedText(enc.tokens, enc.ids, enc.offsets)
                for enc in self._engine.encode_batch(texts, add_special_tokens=False)]

    def _encode(self, text):
        if not isinstance(text, str):
            raise TypeError(f'BERTTokenizer tokenizes str; got {type(text).__name__}')
        return self._engine.encode(text, add_special_tokens=False)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token or list of tokens -> id(s); unknown tokens -> the [UNK] id."""
        return self.vocab[tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int] | np.ndarray
                              ) -> str | list[str]:
        """Id or list of ids -> token(s)."""
        return self.vocab.to_tokens(ids)

    def detokenize(self, tokens: Iterable[str] | Iterable[int],
                   skip_special_tokens: bool = False) -> str:
        """Tokens (or ids) -> text: `##` pieces glued to the previous piece, words space-joined.

        The result is lowercased/normalized text; use offsets to recover the original string.
        """
        tokens = list(tokens)
        if tokens and not isinstance(tokens[0], str):
            tokens = self.vocab.to_tokens(tokens)
        specials = set()
        if skip_special_tokens:
            specials = {t for t in self.vocab.special_tokens.values() if t is not None}
            specials.discard(self.vocab.unknown_token)
        words = []
        for token in tokens:
            if token in specials:
                continue
            if token.startswith(SUBWORD_PREFIX) and words:
                words[-1] += token[len(SUBWORD_PREFIX):]
            else:
                words.append(token)
        return ' '.join(words)

    @staticmethod
    def is_first_subword(token: str) -> bool:
        """True unless the token continues a word (starts with `##`)."""
        return not token.startswith(SUBWORD_PREFIX)

    def __getstate__(self):
        state = dict(self.__dict__)
        del state['_engine']  # rebuilt on unpickling: small, and avoids engine-version coupling
        del state['_word_ids']
        return state

    def __setstate__(self, state):
        state.setdefault('cache_size', _WORD_CACHE_SIZE)  # pickled before lru_cache_size existed
        self.__dict__.update(state)
        self._engine = self._build_engine()
        self._reset_word_cache()

    def __repr__(self):
        return (f'BERTTokenizer(vocab_size={len(self.vocab)}, lower={self.lower}, '
                f'strip_accents={self.strip_accents})')


def _check_texts(texts):
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f'text {i} is a {type(text).__name__}, not str')
    return texts


def _check_casing(vocab, lower):
    """Warn when the casing option cannot match the vocabulary (a silent accuracy loss)."""
    words = [t for t in vocab.idx_to_token if not (t.startswith('[') and t.endswith(']'))]
    cased = sum(1 for t in words if t != t.lower())
    if lower and cased > max(10, len(words) // 100):
        warnings.warn(f'lower=True but the vocabulary has {cased} tokens with upper-case '
                      'letters: it looks cased, and lowercased text will never use them; pass '
                      'lower=False '
                      'for a cased model', stacklevel=3)
    elif not lower and cased == 0 and len(words) > 1000:
        warnings.warn('lower=False but the vocabulary has no upper-case token: it looks uncased, '
                      'so capitalised words will be split badly; pass lower=True for an '
                      'uncased model', stacklevel=3)
