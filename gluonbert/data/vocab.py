"""BERTVocab: WordPiece vocabulary with BERT's special tokens; ids are kept in the source's order.

Two sources: Google/HuggingFace `vocab.txt` (line number = id, so `[PAD]`=0, `[CLS]`=101 for
bert-base-uncased) and GluonNLP 0.10's JSON vocab (its `idx_to_token` order = id; GluonNLP puts
the special tokens first, so the same token has a different id than in `vocab.txt`).
"""
import json
import numbers
import os

import numpy as np

# The identifiers GluonNLP 0.10's BERTVocab serializes, in its order; bos/eos are None for BERT.
SPECIAL_IDENTIFIERS = ('cls_token', 'sep_token', 'mask_token', 'padding_token', 'bos_token',
                       'eos_token')
REQUIRED_SPECIALS = ('unknown_token', 'padding_token', 'cls_token', 'sep_token', 'mask_token')


class BERTVocab:
    """Token <-> id mapping. `vocab[token]` or `vocab[[tokens]]` -> id(s); unknown -> [UNK]'s id."""

    def __init__(self, tokens, unknown_token='[UNK]', padding_token='[PAD]', cls_token='[CLS]',
                 sep_token='[SEP]', mask_token='[MASK]', bos_token=None, eos_token=None,
                 reserved_tokens=None, **extra_special_tokens):
        self.idx_to_token = list(tokens)
        self.token_to_idx = {}
        for idx, token in enumerate(self.idx_to_token):
            if not isinstance(token, str):
                raise TypeError('vocabulary tokens must be str; id {} is {!r}'.format(idx, token))
            if token in self.token_to_idx:
                raise ValueError('token {!r} appears twice in the vocabulary (ids {} and {})'
                                 .format(token, self.token_to_idx[token], idx))
            self.token_to_idx[token] = idx
        for name in extra_special_tokens:
            if not name.endswith('_token') or name.startswith('_') or hasattr(self, name):
                raise ValueError('extra special tokens are keyword arguments named like '
                                 '`xxx_token`; {!r} is not allowed'.format(name))
        specials = dict(unknown_token=unknown_token, padding_token=padding_token,
                        cls_token=cls_token, sep_token=sep_token, mask_token=mask_token,
                        bos_token=bos_token, eos_token=eos_token, **extra_special_tokens)
        for attr, token in specials.items():
            if token is None and attr in REQUIRED_SPECIALS:
                raise ValueError('BERT needs a {}; got None'.format(attr))
            if token is not None and token not in self.token_to_idx:
                raise ValueError('special token {}={!r} is not in the vocabulary'.format(
                    attr, token))
            setattr(self, attr, token)
        self._extra_identifiers = tuple(extra_special_tokens)
        self.reserved_tokens = list(reserved_tokens or [])
        for token in self.reserved_tokens:
            if token not in self.token_to_idx:
                raise ValueError('reserved token {!r} is not in the vocabulary'.format(token))

    @classmethod
    def from_file(cls, path, **special_tokens):
        """Read a Google/HuggingFace `vocab.txt`: one token per line, the line number is its id."""
        if not os.path.isfile(path):
            raise FileNotFoundError('vocabulary file not found: {}'.format(path))
        with open(path, encoding='utf-8') as f:
            tokens = [line.rstrip('\r\n') for line in f]
        while tokens and tokens[-1] == '':
            tokens.pop()  # a trailing newline is not a token
        return cls(tokens, **special_tokens)

    @classmethod
    def from_json(cls, path_or_json_str):
        """Read GluonNLP 0.10's BERTVocab JSON (a file path or the JSON text); ids = its order."""
        text = path_or_json_str
        if not text.lstrip().startswith('{'):
            if not os.path.isfile(text):
                raise FileNotFoundError('vocabulary JSON not found (and the argument is not JSON '
                                        'text): {}'.format(text))
            with open(text, encoding='utf-8') as f:
                text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError('vocabulary JSON is not valid JSON: {}'.format(err)) from None
        return cls._from_gluonnlp_dict(data)

    @classmethod
    def _from_gluonnlp_dict(cls, data):
        token_to_idx = data.get('token_to_idx')
        idx_to_token = data.get('idx_to_token')
        if idx_to_token is None and token_to_idx is None:
            raise ValueError('vocabulary JSON has neither idx_to_token nor token_to_idx')
        if idx_to_token is None:
            idx_to_token = [t for t, _ in sorted(token_to_idx.items(), key=lambda kv: kv[1])]
        if token_to_idx is not None:
            if len(token_to_idx) != len(idx_to_token):
                raise ValueError(
                    'vocabulary JSON is inconsistent: {} entries in idx_to_token but {} in '
                    'token_to_idx (GluonNLP < 0.7 wrote such corrupted vocabularies)'.format(
                        len(idx_to_token), len(token_to_idx)))
            for idx, token in enumerate(idx_to_token):
                if token_to_idx.get(token) != idx:
                    raise ValueError('vocabulary JSON is inconsistent: idx_to_token[{}] = {!r} '
                                     'but token_to_idx[{!r}] = {}'.format(
                                         idx, token, token, token_to_idx.get(token)))
        identifiers = dict(data.get('identifiers_to_tokens') or {})
        # GluonNLP < 0.8 wrote the special tokens as top-level keys instead.
        for name in SPECIAL_IDENTIFIERS:
            if name in data and data[name] is not None:
                if identifiers.get(name, data[name]) != data[name]:
                    raise ValueError('vocabulary JSON gives {} twice with different values'.format(
                        name))
                identifiers[name] = data[name]
        unknown = data.get('unknown_token')
        specials = {unknown} | set(identifiers.values())
        reserved = [t for t in (data.get('reserved_tokens') or []) if t not in specials]
        kwargs = dict(identifiers)
        for name in REQUIRED_SPECIALS[1:]:
            kwargs.setdefault(name, None)  # a missing BERT token is reported by __init__
        return cls(idx_to_token, unknown_token=unknown, reserved_tokens=reserved, **kwargs)

    def to_json(self):
        """Serialize to GluonNLP 0.10's BERTVocab JSON string (readable by gluonnlp's from_json)."""
        identifiers = {name: getattr(self, name) for name in
                       SPECIAL_IDENTIFIERS + self._extra_identifiers}
        specials = []
        for token in identifiers.values():
            if token is not None and token not in specials:
                specials.append(token)
        reserved = specials + [t for t in self.reserved_tokens if t not in specials]
        return json.dumps(dict(idx_to_token=self.idx_to_token, token_to_idx=self.token_to_idx,
                               reserved_tokens=reserved, unknown_token=self.unknown_token,
                               identifiers_to_tokens=identifiers))

    def to_file(self, path):
        """Write a `vocab.txt` (one token per line, in id order)."""
        for token in self.idx_to_token:
            if '\n' in token or '\r' in token:
                raise ValueError('token {!r} contains a line break; vocab.txt cannot hold it'
                                 .format(token))
        with open(path, 'w', encoding='utf-8') as f:
            f.write(''.join(token + '\n' for token in self.idx_to_token))

    def __len__(self):
        return len(self.idx_to_token)

    def __contains__(self, token):
        return token in self.token_to_idx

    def __eq__(self, other):
        return (isinstance(other, BERTVocab) and self.idx_to_token == other.idx_to_token and
                self.special_tokens == other.special_tokens)

    def __hash__(self):
        return hash((len(self.idx_to_token), tuple(self.idx_to_token[:50]), self.unknown_token))

    @property
    def special_tokens(self):
        """Identifier -> token for unknown/padding/cls/sep/mask/bos/eos (and extra) tokens."""
        names = ('unknown_token',) + SPECIAL_IDENTIFIERS + self._extra_identifiers
        return {name: getattr(self, name) for name in names}

    def __getitem__(self, tokens):
        unk = self.token_to_idx[self.unknown_token]
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, unk)
        get = self.token_to_idx.get
        return [get(t, unk) for t in tokens]

    def __call__(self, tokens):
        """Same as `vocab[tokens]` (GluonNLP's Vocab is callable)."""
        return self[tokens]

    def to_indices(self, tokens):
        """Token or list of tokens -> id or list of ids (GluonNLP's name for `vocab[tokens]`)."""
        return self[tokens]

    def to_tokens(self, indices):
        """Id or list/array of ids -> token or list of tokens; an id out of range is an error."""
        size = len(self.idx_to_token)
        if isinstance(indices, numbers.Integral):
            if not 0 <= indices < size:
                raise ValueError('token id {} is out of range for a vocabulary of {}'.format(
                    indices, size))
            return self.idx_to_token[indices]
        if isinstance(indices, np.ndarray):
            if indices.ndim != 1:
                raise ValueError('to_tokens takes an id or a 1-D sequence of ids; got an array of '
                                 'shape {}'.format(indices.shape))
            indices = indices.tolist()
        out = []
        for i in indices:
            if not isinstance(i, numbers.Integral) or not 0 <= i < size:
                raise ValueError('token id {!r} is out of range for a vocabulary of {}'.format(
                    i, size))
            out.append(self.idx_to_token[i])
        return out

    def __repr__(self):
        return 'BERTVocab(size={}, unk={!r}, pad={!r})'.format(
            len(self), self.unknown_token, self.padding_token)


def bundled_vocab_path(name='en_uncased'):
    """Path of a vocabulary shipped with gluonbert (`en_uncased`: Google's BERT uncased, 30,522)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'vocabs', name + '.txt')
    if not os.path.isfile(path):
        raise FileNotFoundError('no bundled vocabulary named {!r} (looked for {})'.format(
            name, path))
    return path
