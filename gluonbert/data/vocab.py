"""BERTVocab: WordPiece vocabulary with BERT's special tokens, ids kept in file order."""
import os

SPECIAL_TOKENS = dict(unknown_token='[UNK]', padding_token='[PAD]', cls_token='[CLS]',
                      sep_token='[SEP]', mask_token='[MASK]')


class BERTVocab:
    """Token <-> id mapping. `vocab[token]` or `vocab[[tokens]]` -> id(s); unknown -> [UNK]'s id."""

    def __init__(self, tokens, unknown_token='[UNK]', padding_token='[PAD]', cls_token='[CLS]',
                 sep_token='[SEP]', mask_token='[MASK]'):
        self.idx_to_token = list(tokens)
        self.token_to_idx = {}
        for idx, token in enumerate(self.idx_to_token):
            if token in self.token_to_idx:
                raise ValueError('token {!r} appears twice in the vocabulary (ids {} and {})'
                                 .format(token, self.token_to_idx[token], idx))
            self.token_to_idx[token] = idx
        specials = dict(unknown_token=unknown_token, padding_token=padding_token,
                        cls_token=cls_token, sep_token=sep_token, mask_token=mask_token)
        for attr, token in specials.items():
            if token not in self.token_to_idx:
                raise ValueError('special token {}={!r} is not in the vocabulary'.format(
                    attr, token))
            setattr(self, attr, token)

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

    def __len__(self):
        return len(self.idx_to_token)

    def __contains__(self, token):
        return token in self.token_to_idx

    def __getitem__(self, tokens):
        unk = self.token_to_idx[self.unknown_token]
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, unk)
        return [self.token_to_idx.get(t, unk) for t in tokens]

    def to_tokens(self, indices):
        """Id or list of ids -> token or list of tokens."""
        if isinstance(indices, int):
            return self.idx_to_token[indices]
        return [self.idx_to_token[i] for i in indices]

    def __repr__(self):
        return 'BERTVocab(size={}, unk={!r}, pad={!r})'.format(
            len(self), self.unknown_token, self.padding_token)


def bundled_vocab_path(name='en_uncased'):
    """Path of a vocabulary shipped inside gluonbert (`en_uncased`: Google's BERT uncased, 30,522)."""
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), 'vocabs', name + '.txt')
