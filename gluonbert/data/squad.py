"""SQuAD v1.1: read the JSON, turn questions into BERT windows over the context, and map
predicted token spans back to the exact original text through character offsets."""
from __future__ import annotations

import collections
import json
import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .tokenizer import BERTTokenizer

SquadExample = collections.namedtuple(
    'SquadExample', ['qas_id', 'question', 'context', 'answers', 'title'])
SquadExample.__doc__ = ('One question; answers: list of (text, start character in context), '
                        'empty for unlabeled data.')


class SquadFeatures(collections.namedtuple('SquadFeatures', [
        'input_ids', 'token_types', 'valid_length', 'start_position', 'end_position',
        'example_index', 'qas_id', 'window_index', 'offsets', 'is_max_context'])):
    """One window `[CLS] question [SEP] context window [SEP]` of one question.

    input_ids, token_types: int32 (L,); valid_length: int32 (); start/end_position: the answer's
    token positions, both 0 ([CLS]) when it is not inside this window or unlabeled;
    offsets: int32 (L, 2) character span in the context of each context token, (-1, -1) for
    question and special tokens; is_max_context: bool (L,), True where this window gives the
    token the most surrounding context (the window whose prediction counts for it).
    """
    __slots__ = ()

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, token_types, valid_length)."""
        return self.input_ids, self.token_types, self.valid_length


def read_squad(path: str) -> list[SquadExample]:
    """SQuAD v1.1 JSON file -> list of SquadExample; inconsistent answers raise naming the id."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'SQuAD file not found: {path}')
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not valid JSON ({err})') from None
    if not isinstance(data, dict) or not isinstance(data.get('data'), list):
        raise ValueError(f'{path}: expected a SQuAD object {{"data": [articles]}}')
    examples = []
    for article in data['data']:
        title = article.get('title', '')
        for paragraph in article['paragraphs']:
            context = paragraph['context']
            for qa in paragraph['qas']:
                answers = []
                for answer in qa.get('answers', []):
                    text, start = answer['text'], answer['answer_start']
                    if context[start:start + len(text)] != text:
                        raise ValueError('{}: question {}: answer {!r} is not at character {} of '
                                         'its context (found {!r})'.format(
                                             path, qa['id'], text, start,
                                             context[start:start + len(text)]))
                    answers.append((text, start))
                examples.append(SquadExample(qa['id'], qa['question'], context, answers, title))
    return examples


class SquadTransform:
    """SquadExample -> list of SquadFeatures windows (Google's run_squad layout).

    The question is cut to max_query_length tokens; the context is covered by windows of up to
    max_seq_length - len(question) - 3 tokens whose starts are doc_stride tokens apart.
    With is_training, the first answer gives start/end_position. Counts are in `self.stats`.
    """

    def __init__(self, tokenizer: BERTTokenizer, max_seq_length: int = 384,
                 doc_stride: int = 128, max_query_length: int = 64, is_training: bool = True):
        if not isinstance(tokenizer, BERTTokenizer):
            raise TypeError('SquadTransform needs a gluonbert BERTTokenizer')
        if max_query_length + 4 > max_seq_length:
            raise ValueError(f'max_seq_length={max_seq_length} leaves no room for context after a '
                             f'question of '
                             f'up to max_query_length={max_query_length} tokens')
        if doc_stride < 1:
            raise ValueError(f'doc_stride must be >= 1; got {doc_stride}')
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.is_training = is_training
        vocab = tokenizer.vocab
        self._cls, self._sep, self._pad = (vocab[vocab.cls_token], vocab[vocab.sep_token],
                                           vocab[vocab.padding_token])
        self.stats = collections.Counter()

    def __call__(self, example: SquadExample, example_index: int = 0) -> list[SquadFeatures]:
        """One SquadExample -> list of SquadFeatures (at least one window)."""
        question = self.tokenizer.encode_ids(example.question)
        self.stats['examples'] += 1
        if len(question) > self.max_query_length:
            self.stats['questions_truncated'] += 1
            question = question[:self.max_query_length]
        context = self.tokenizer.encode(example.context)
        span = None
        if self.is_training and example.answers:
            span = _answer_token_span(context.offsets, *example.answers[0])
            if span is None:
                self.stats['answers_without_tokens'] += 1
        windows = self._windows(len(context.ids), len(question))
        if len(windows) > 1:
            self.stats['contexts_split'] += 1
        best = _max_context_windows(windows, len(context.ids))
        features = []
        for w, (start, length) in enumerate(windows):
            features.append(self._feature(example, example_index, w, question, context, start,
                                          length, span, best))
            if span is not None and features[-1].start_position == 0:
                self.stats['windows_without_answer'] += 1
        self.stats['features'] += len(features)
        return features

    def features(self, examples: Sequence[SquadExample]) -> list[SquadFeatures]:
        """All examples -> flat list of SquadFeatures, example_index = position in `examples`."""
        return [feature for index, example in enumerate(examples)
                for feature in self(example, index)]

    def report(self) -> str:
        """One line on truncated questions, split contexts and answers outside windows."""
        s = self.stats
        return ('{} questions -> {} windows; {} questions cut to max_query_length={}, {} contexts '
                'split into several windows, {} windows without the answer, {} answers with no '
                'token'.format(s['examples'], s['features'], s['questions_truncated'],
                               self.max_query_length, s['contexts_split'],
                               s['windows_without_answer'], s['answers_without_tokens']))

    def _windows(self, num_context, num_question):
        budget = self.max_seq_length - num_question - 3
        windows, start = [], 0
        while True:
            length = min(num_context - start, budget)
            windows.append((start, length))
            if start + length >= num_context:
                return windows
            start += min(length, self.doc_stride)

    def _feature(self, example, example_index, window_index, question, context, start, length,
                 span, best):
        offset = len(question) + 2  # [CLS] question [SEP]
        valid = offset + length + 1
        size = self.max_seq_length
        input_ids = np.full(size, self._pad, dtype=np.int32)
        token_types = np.zeros(size, dtype=np.int32)
        offsets = np.full((size, 2), -1, dtype=np.int32)
        is_max = np.zeros(size, dtype=bool)
        input_ids[0] = self._cls
        input_ids[1:1 + len(question)] = question
        input_ids[offset - 1] = self._sep
        input_ids[offset:offset + length] = context.ids[start:start + length]
        input_ids[valid - 1] = self._sep
        token_types[offset:valid] = 1
        if length:
            offsets[offset:offset + length] = context.offsets[start:start + length]
            is_max[offset:offset + length] = best[start:start + length] == window_index
        start_position = end_position = 0
        if span is not None and start <= span[0] and span[1] < start + length:
            start_position, end_position = span[0] - start + offset, span[1] - start + offset
        return SquadFeatures(input_ids, token_types, np.array(valid, dtype=np.int32),
                             start_position, end_position, example_index, example.qas_id,
                             window_index, offsets, is_max)


def _answer_token_span(offsets, text, char_start):
    """(first, last) context tokens overlapping the answer characters, or None."""
    char_end = char_start + len(text)
    covered = [i for i, (start, end) in enumerate(offsets) if start < char_end and end > char_start]
    if not covered:
        return None
    return covered[0], covered[-1]


def _max_context_windows(windows, num_context):
    """For each context token, the window where min(left, right context) + 0.01 * length peaks."""
    best = np.zeros(num_context, dtype=np.int64)
    score = np.full(num_context, -np.inf)
    for w, (start, length) in enumerate(windows):
        positions = np.arange(start, start + length)
        window_score = (np.minimum(positions - start, start + length - 1 - positions) +
                        0.01 * length)
        better = window_score > score[start:start + length]
        best[start:start + length][better] = w
        score[start:start + length][better] = window_score[better]
    return best


def best_spans(features: Sequence[SquadFeatures], start_logits: Sequence[ArrayLike],
               end_logits: Sequence[ArrayLike], n_best_size: int = 20,
               max_answer_length: int = 30
               ) -> dict[int, tuple[float, SquadFeatures, np.integer, np.integer]]:
    """Best span per question -> {example_index: (score, feature, start, end)}: token positions
    in that feature's window, score the sum of their start and end logits.

    features[i] pairs with start_logits[i] / end_logits[i] (each (L,)); a span must lie in the
    context, start at a max-context token, and span at most max_answer_length tokens.
    """
    if not len(features) == len(start_logits) == len(end_logits):
        raise ValueError(f'{len(features)} features but {len(start_logits)} start and '
                         f'{len(end_logits)} end logits')
    best = {}
    for feature, starts, ends in zip(features, start_logits, end_logits):
        starts, ends = np.asarray(starts), np.asarray(ends)
        in_context = feature.offsets[:len(starts), 0] >= 0
        top_starts = [i for i in np.argsort(-starts, kind='stable')[:n_best_size]
                      if in_context[i] and feature.is_max_context[i]]
        top_ends = [i for i in np.argsort(-ends, kind='stable')[:n_best_size] if in_context[i]]
        for s in top_starts:
            for e in top_ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if feature.example_index not in best or score > best[feature.example_index][0]:
                    best[feature.example_index] = (score, feature, s, e)
    return best


def predict_answers(examples: Sequence[SquadExample], features: Sequence[SquadFeatures],
                    start_logits: Sequence[ArrayLike], end_logits: Sequence[ArrayLike],
                    n_best_size: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """Best span per question -> {qas_id: answer text sliced from the original context}.

    features[i] pairs with start_logits[i] / end_logits[i] (each (L,)); a span must lie in the
    context, start at a max-context token, and span at most max_answer_length tokens.
    """
    best = best_spans(features, start_logits, end_logits, n_best_size, max_answer_length)
    predictions = {}
    for index, example in enumerate(examples):
        if index not in best:
            predictions[example.qas_id] = ''
            continue
        _, feature, s, e = best[index]
        predictions[example.qas_id] = example.context[feature.offsets[s, 0]:feature.offsets[e, 1]]
    return predictions


def gold_answers(examples: Sequence[SquadExample]) -> dict[str, list[str]]:
    """{qas_id: [answer texts]} for gluonbert.metrics.squad_evaluate."""
    return {example.qas_id: [text for text, _ in example.answers] for example in examples}
