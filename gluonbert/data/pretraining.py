"""Pretraining examples: sentence pairs with next-sentence labels and masked-LM targets.

Follows Google's create_pretraining_data.py: documents are lists of sentences; segments are
accumulated to a target length (sometimes shorter, short_seq_prob), split into A and B; B is
the true continuation or, with probability 1/2, text from another document (where Google's
code forced a random B for a lone last sentence, it is split in two instead, keeping 50/50).
15% of the tokens (excluding [CLS]/[SEP]) are predicted: 80% replaced by [MASK], 10% by a
random word piece, 10% kept. Everything is drawn from one seeded RNG, so the same seed gives
the same examples.
"""
from __future__ import annotations

import collections
import random
from collections.abc import Sequence

import numpy as np

from .readers import read_text
from .tokenizer import BERTTokenizer

PretrainingExample = collections.namedtuple('PretrainingExample', [
    'input_ids', 'token_types', 'valid_length', 'masked_positions', 'masked_ids',
    'masked_weights', 'next_sentence_label'])
PretrainingExample.__doc__ = (
    'input_ids, token_types: int32 (L,) with L = valid_length (unpadded); masked_positions, '
    'masked_ids: int32 (P,) and masked_weights: float32 (P,), P = max_predictions_per_seq, '
    'padded with weight 0; next_sentence_label: 0 when B follows A, 1 when B is random.')

IS_NEXT, NOT_NEXT = 0, 1


def read_documents(paths: str | Sequence[str]) -> list[list[str]]:
    """Text file(s) with one sentence per line, documents separated by blank lines ->
    list of documents, each a list of sentences."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    documents = []
    for path in paths:
        current = []
        for line in read_text(path).split('\n'):
            line = line.strip()
            if line:
                current.append(line)
            elif current:
                documents.append(current)
                current = []
        if current:
            documents.append(current)
    return documents


class PretrainingExampleBuilder:
    """Documents -> list of PretrainingExample (seeded; see the module docstring).

    whole_word_masking: mask all pieces of a word together. The random replacement is drawn
    from the vocabulary without special and bracketed ([unused0]) tokens. Counts of what was
    built (random-next pairs, truncations, mask/random/kept choices) are in `self.stats`.
    """

    def __init__(self, tokenizer: BERTTokenizer, max_seq_length: int = 128,
                 masked_lm_prob: float = 0.15, max_predictions_per_seq: int = 20,
                 short_seq_prob: float = 0.1, whole_word_masking: bool = False,
                 dupe_factor: int = 1, shuffle: bool = True, seed: int = 12345):
        if not isinstance(tokenizer, BERTTokenizer):
            raise TypeError('PretrainingExampleBuilder needs a gluonbert BERTTokenizer')
        if max_seq_length < 5:
            raise ValueError('max_seq_length must be >= 5 for [CLS] a [SEP] b [SEP]; got '
                             f'{max_seq_length}')
        if not 0 < masked_lm_prob < 1:
            raise ValueError(f'masked_lm_prob must be in (0, 1); got {masked_lm_prob}')
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions_per_seq = max_predictions_per_seq
        self.short_seq_prob = short_seq_prob
        self.whole_word_masking = whole_word_masking
        self.dupe_factor = dupe_factor
        self.shuffle = shuffle
        self.seed = seed
        vocab = tokenizer.vocab
        self._cls, self._sep, self._mask = (vocab[vocab.cls_token], vocab[vocab.sep_token],
                                            vocab[vocab.mask_token])
        self._is_continuation = np.array([t.startswith('##') for t in vocab.idx_to_token])
        self._replacements = [i for i, t in enumerate(vocab.idx_to_token)
                              if not (t.startswith('[') and t.endswith(']'))]
        self.stats = collections.Counter()

    def build(self, documents: Sequence[Sequence[str]]) -> list[PretrainingExample]:
        """List of documents (lists of sentences) -> list of PretrainingExample."""
        documents = [doc for doc in documents if doc]
        if len(documents) < 2:
            raise ValueError('need at least 2 non-empty documents to draw random next sentences; '
                             f'got {len(documents)}')
        sentences = [s for doc in documents for s in doc]
        ids = iter(self.tokenizer.encode_batch_ids(sentences))
        tokenized = [[ids_ for ids_ in (next(ids) for _ in doc) if ids_] for doc in documents]
        tokenized = [doc for doc in tokenized if doc]
        rng = random.Random(self.seed)
        self.stats = collections.Counter()
        examples = []
        for _ in range(self.dupe_factor):
            for index in range(len(tokenized)):
                examples.extend(self._from_document(tokenized, index, rng))
        if self.shuffle:
            rng.shuffle(examples)
        return examples

    def _from_document(self, documents, index, rng):
        document = documents[index]
        max_tokens = self.max_seq_length - 3
        target = max_tokens
        if rng.random() < self.short_seq_prob:
            target = rng.randint(2, max_tokens)
        examples, chunk, chunk_length, i = [], [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            chunk_length += len(document[i])
            if i == len(document) - 1 or chunk_length >= target:
                random_next = rng.random() < 0.5
                if not random_next and len(chunk) == 1:
                    # Google forces a random B here, which skews the labels towards random;
                    # a true B is the next sentence or, at the document's end, the sentence's tail.
                    if i + 1 < len(document):
                        i += 1
                        chunk.append(document[i])
                    elif len(chunk[0]) >= 2:
                        cut = rng.randint(1, len(chunk[0]) - 1)
                        chunk = [chunk[0][:cut], chunk[0][cut:]]
                    else:
                        random_next = True
                        self.stats['forced_random_next'] += 1
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for segment in chunk[:a_end] for t in segment]
                if random_next:
                    tokens_b = self._random_segment(documents, index, target - len(tokens_a),
                                                    rng)
                    i -= len(chunk) - a_end  # the unused sentences start the next chunk
                else:
                    tokens_b = [t for segment in chunk[a_end:] for t in segment]
                examples.append(self._example(tokens_a, tokens_b, random_next, rng))
                chunk, chunk_length = [], 0
            i += 1
        return examples

    def _random_segment(self, documents, index, target_length, rng):
        other = rng.randrange(len(documents) - 1)
        other += other >= index  # any document but this one
        document = documents[other]
        tokens = []
        for segment in document[rng.randrange(len(document)):]:
            tokens.extend(segment)
            if len(tokens) >= target_length:
                break
        return tokens

    def _truncate(self, tokens_a, tokens_b, rng):
        """Cut the longer side, from its front or back at random, until the pair fits."""
        cut = False
        while len(tokens_a) + len(tokens_b) > self.max_seq_length - 3:
            longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
            if rng.random() < 0.5:
                del longer[0]
            else:
                longer.pop()
            cut = True
        if cut:
            self.stats['truncated_pairs'] += 1

    def _example(self, tokens_a, tokens_b, random_next, rng):
        self._truncate(tokens_a, tokens_b, rng)
        input_ids = np.array([self._cls] + tokens_a + [self._sep] + tokens_b + [self._sep],
                             dtype=np.int32)
        token_types = np.zeros(len(input_ids), dtype=np.int32)
        token_types[len(tokens_a) + 2:] = 1
        positions, originals = self._mask_tokens(input_ids, rng)
        size = self.max_predictions_per_seq
        masked_positions = np.zeros(size, dtype=np.int32)
        masked_ids = np.zeros(size, dtype=np.int32)
        masked_weights = np.zeros(size, dtype=np.float32)
        masked_positions[:len(positions)] = positions
        masked_ids[:len(positions)] = originals
        masked_weights[:len(positions)] = 1
        self.stats['examples'] += 1
        self.stats['random_next'] += int(random_next)
        self.stats['tokens'] += len(input_ids)
        return PretrainingExample(input_ids, token_types, np.array(len(input_ids), np.int32),
                                  masked_positions, masked_ids, masked_weights,
                                  np.int32(NOT_NEXT if random_next else IS_NEXT))

    def _mask_tokens(self, input_ids, rng):
        """Mask input_ids in place; -> (sorted positions, original ids at them)."""
        groups = []
        for position, token in enumerate(input_ids.tolist()):
            if token in (self._cls, self._sep):
                continue
            if self.whole_word_masking and groups and self._is_continuation[token]:
                groups[-1].append(position)
            else:
                groups.append([position])
        rng.shuffle(groups)
        budget = min(self.max_predictions_per_seq,
                     max(1, int(round(len(input_ids) * self.masked_lm_prob))))
        chosen = []
        for group in groups:
            if len(chosen) >= budget:
                break
            if len(chosen) + len(group) > budget:
                continue
            chosen.extend(group)
        chosen.sort()
        originals = input_ids[chosen].copy()
        for position in chosen:
            draw = rng.random()
            if draw < 0.8:
                input_ids[position] = self._mask
                self.stats['masked_with_mask'] += 1
            elif draw < 0.9:
                input_ids[position] = rng.choice(self._replacements)
                self.stats['masked_with_random'] += 1
            else:
                self.stats['masked_kept'] += 1
        self.stats['masked'] += len(chosen)
        return chosen, originals

    def report(self) -> str:
        """One line: examples, share of random-next pairs, truncations, mask choices."""
        s = self.stats
        return ('{} examples, {:.1%} random next ({} forced: one-token document ends), {} '
                'pairs truncated; {} tokens predicted: {} [MASK], {} random, {} kept'.format(
                    s['examples'], s['random_next'] / max(s['examples'], 1),
                    s['forced_random_next'], s['truncated_pairs'], s['masked'],
                    s['masked_with_mask'], s['masked_with_random'], s['masked_kept']))
