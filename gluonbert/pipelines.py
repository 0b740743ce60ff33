"""Task pipelines like HuggingFace's `pipeline(task, model=...)`: raw text in, labels, entities,
answers or vectors out.

    classify = gluonbert.pipeline('text-classification', model='sst2_folder')
    classify('a great movie')                 # [{'label': 'positive', 'score': 0.98}]
    classify(['a', 'b'], top_k=None)          # per text, every label with its score, best first
    classify({'text': 'a', 'text_pair': 'b'}) # sentence pairs (or ('a', 'b') tuples)

Tasks: 'text-classification' ('sentiment-analysis'), 'regression', 'token-classification'
('ner'), 'question-answering', 'feature-extraction'. `model` is a folder written by
save_pretrained (or a transformers BERT folder), or a block with vocab=. Output formats are
HF's: a dict (or list of dicts) per input, a list in gives a list out. Lists are tokenized,
sorted by length into batches of batch_size and answered in input order; a tqdm bar shows on
many inputs when stderr is a terminal (progress=True/False forces it). Texts longer than the
model's max length are cut (HF's pipelines raise instead); question answering windows long
contexts (gluonbert.data.squad).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mxnet as mx
import numpy as np

from .batched import (ModelSource, backbone, check_block, load_model, prepare_for_inference,
                      run_batched)
from .data.squad import SquadExample, SquadTransform, best_spans
from .data.transforms import BERTSentenceTransform, TruncationCounter
from .data.vocab import BERTVocab
from .embeddings import SentencePooler
from .model.task_heads import BERTClassifier, BERTForQA, BERTForTokenClassification, BERTRegression

FUNCTIONS = ('softmax', 'sigmoid', 'none')
AGGREGATIONS = ('none', 'simple')
_UNSET = object()  # top_k not given: HF's legacy single-label answer

__all__ = ['pipeline', 'Pipeline', 'TextClassificationPipeline', 'TokenClassificationPipeline',
           'QuestionAnsweringPipeline', 'FeatureExtractionPipeline', 'TASKS']


class Pipeline:
    """Shared parts: the model, its tokenizer, batching in length order, input/output shapes."""

    def __init__(self, model: ModelSource, vocab: BERTVocab | None = None,
                 ctx: mx.Context | None = None, batch_size: int = 32,
                 progress: bool | None = None, lower: bool | None = None,
                 max_length: int | None = None, hybridize: bool = True):
        block, self.info, loaded_here = load_model(model, vocab, ctx, lower, max_length)
        self.ctx = ctx
        self.block = block
        self.net = prepare_for_inference(self._network(block), loaded_here, hybridize)
        self.tokenizer = self.info.tokenizer()
        self.max_length = int(self.info.max_length)
        self.batch_size = batch_size
        self.progress = progress

    def _network(self, block):
        """The block that is run: (ids, types, lengths) -> outputs."""
        return block

    def __call__(self, inputs: str | dict | tuple[str, str] | Iterable[Any],
                 batch_size: int | None = None, progress: bool | None = None,
                 **options: Any) -> dict | list | np.ndarray:
        """One input -> its answer; a list of inputs -> a list of answers, in input order."""
        single = self._is_single(inputs)
        items = [inputs] if single else list(inputs)
        options = self._options(**options)
        prepared = [self._prepare(item) for item in items]
        rows = [row for rows, _ in prepared for row in rows]
        outputs = run_batched(self.net, rows, batch_size or self.batch_size, self.ctx,
                              self.progress if progress is None else progress,
                              desc=type(self).__name__)
        answers, start = [], 0
        for item_rows, context in prepared:
            answers.append(self._answer(outputs[start:start + len(item_rows)], context,
                                        **options))
            start += len(item_rows)
        return self._single_answer(answers[0], options) if single else answers

    def _is_single(self, inputs):
        return isinstance(inputs, (str, dict))

    def _options(self, **options):
        if options:
            raise TypeError(f'{type(self).__name__} got unknown options: {", ".join(options)}')
        return {}

    def _single_answer(self, answer, options):
        return answer

    def _prepare(self, item):
        """One input -> (model input rows, what _answer needs)."""
        raise NotImplementedError

    def _answer(self, outputs, context, **options):
        """The outputs of an input's rows -> its answer."""
        raise NotImplementedError

    def _label_names(self, count):
        labels = self.info.labels
        return list(labels) if labels else [f'LABEL_{i}' for i in range(count)]


class TextClassificationPipeline(Pipeline):
    """Sentences or sentence pairs -> {'label', 'score'} (or all labels with top_k)."""
    heads = (BERTClassifier, BERTRegression)
    task = 'text-classification'

    def __init__(self, model: ModelSource, top_k: int | None | object = _UNSET,
                 function_to_apply: str | None = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        check_block(self.block, self.heads, self.task)
        self.top_k = top_k
        self.function_to_apply = function_to_apply
        self._single = BERTSentenceTransform(self.tokenizer, self.max_length, pad=False,
                                             pair=False)
        self._pair = BERTSentenceTransform(self.tokenizer, self.max_length, pad=False, pair=True)

    def _is_single(self, inputs):
        return isinstance(inputs, (str, dict)) or (
            isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(t, str)
                                                                   for t in inputs))

    def _options(self, top_k=_UNSET, function_to_apply=None):
        top_k = self.top_k if top_k is _UNSET else top_k
        if not (top_k is _UNSET or top_k is None or (isinstance(top_k, int) and top_k >= 1)):
            raise ValueError(f'top_k must be None (every label) or an integer >= 1; got {top_k!r}')
        function = function_to_apply or self.function_to_apply or self._default_function()
        if function not in FUNCTIONS:
            raise ValueError(f'function_to_apply must be one of {FUNCTIONS}; got {function!r}')
        return dict(top_k=top_k, function=function)

    def _default_function(self):
        """HF's rule: 'none' for regression, sigmoid for one output, else softmax."""
        if isinstance(self.block, BERTRegression):
            return 'none'
        return 'sigmoid' if self.block.classifier.weight.shape[0] == 1 else 'softmax'

    def _prepare(self, item):
        if isinstance(item, dict):
            unknown = set(item) - {'text', 'text_pair'}
            if 'text' not in item or unknown:
                raise ValueError("a dict input needs 'text' (and optionally 'text_pair'); got "
                                 f'keys {sorted(item)}')
            texts = (item['text'],) if item.get('text_pair') is None else \
                (item['text'], item['text_pair'])
        elif isinstance(item, str):
            texts = (item,)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            texts = tuple(item)
        else:
            raise TypeError('each input must be a str, a (text, text_pair) tuple or a dict '
                            f"{{'text': ..., 'text_pair': ...}}; got {item!r}")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f'texts must be str; got {type(text).__name__}: {text!r}')
        transform = self._pair if len(texts) == 2 else self._single
        return [transform(texts).model_inputs()], None

    def _answer(self, outputs, context, top_k, function):
        logits = outputs[0][0].astype(np.float64)
        if function == 'softmax':
            scores = np.exp(logits - logits.max())
            scores /= scores.sum()
        elif function == 'sigmoid':
            scores = 1 / (1 + np.exp(-logits))
        else:
            scores = logits
        labels = self._label_names(len(scores))
        if top_k is _UNSET:
            best = int(scores.argmax())
            return {'label': labels[best], 'score': float(scores[best])}
        order = np.argsort(-scores, kind='stable')[:top_k]
        return [{'label': labels[i], 'score': float(scores[i])} for i in order]

    def _single_answer(self, answer, options):
        # HF: a lone text without top_k is answered with a one-element list
        return [answer] if options['top_k'] is _UNSET else answer


class RegressionPipeline(TextClassificationPipeline):
    """Sentences or pairs -> {'label', 'score'} with the raw regression output as the score."""
    heads = (BERTRegression,)
    task = 'regression'


class TokenClassificationPipeline(Pipeline):
    """A text -> its tagged tokens [{'entity', 'score', 'index', 'word', 'start', 'end'}]
    (aggregation_strategy='simple': grouped [{'entity_group', 'score', 'word', 'start',
    'end'}]); tokens labelled with ignore_labels (default ['O']) are left out."""

    def __init__(self, model: ModelSource, aggregation_strategy: str = 'none',
                 ignore_labels: Iterable[str] | None = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        check_block(self.block, (BERTForTokenClassification,), 'token-classification')
        self.aggregation_strategy = aggregation_strategy
        self.ignore_labels = ignore_labels
        vocab = self.info.vocab
        self._cls, self._sep = vocab[vocab.cls_token], vocab[vocab.sep_token]
        self.truncation = TruncationCounter(self.max_length)  # warns on the first cut text
        self._options()  # validate the defaults now

    def _options(self, aggregation_strategy=None, ignore_labels=None):
        strategy = str(aggregation_strategy or self.aggregation_strategy).lower()
        if strategy not in AGGREGATIONS:
            raise ValueError(f'aggregation_strategy must be one of {AGGREGATIONS} (HF\'s '
                             f"'first' / 'average' / 'max' are not implemented); got {strategy!r}")
        ignore = ignore_labels if ignore_labels is not None else self.ignore_labels
        return dict(strategy=strategy, ignore=['O'] if ignore is None else list(ignore))

    def _prepare(self, item):
        if not isinstance(item, str):
            raise TypeError(f'token-classification takes str texts; got {type(item).__name__}')
        encoded = self.tokenizer.encode(item)
        keep = self.max_length - 2
        self.truncation.add(len(encoded.ids), min(len(encoded.ids), keep))
        ids = [self._cls] + list(encoded.ids[:keep]) + [self._sep]
        row = (np.array(ids, dtype=np.int32), np.zeros(len(ids), dtype=np.int32),
               np.int32(len(ids)))
        return [row], (item, encoded.tokens[:keep], encoded.ids[:keep], encoded.offsets[:keep])

    def _answer(self, outputs, context, strategy, ignore):
        text, tokens, ids, offsets = context
        logits = outputs[0][0][1:len(tokens) + 1].astype(np.float64)  # (tokens, num_classes)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        labels = self._label_names(probs.shape[1])
        unk = self.info.vocab[self.info.vocab.unknown_token]
        entities = []
        for i, (token, token_id, (start, end)) in enumerate(zip(tokens, ids, offsets)):
            best = int(probs[i].argmax())
            entities.append({'entity': labels[best], 'score': float(probs[i, best]),
                             'index': i + 1, 'word': text[start:end] if token_id == unk else token,
                             'start': int(start), 'end': int(end)})
        if strategy == 'simple':
            entities = self._group(entities)
        return [e for e in entities
                if e.get('entity') not in ignore and e.get('entity_group') not in ignore]

    def _group(self, entities):
        """HF's 'simple' grouping: neighbours with the same tag join unless the next is B-."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = _bio(entity['entity'])
                if not (tag == _bio(current[-1]['entity'])[1] and bi != 'B'):
                    groups.append(self._group_of(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self._group_of(current))
        return groups

    def _group_of(self, entities):
        return {'entity_group': entities[0]['entity'].split('-', 1)[-1],
                'score': float(np.mean([e['score'] for e in entities])),
                'word': self.tokenizer.detokenize([e['word'] for e in entities]),
                'start': entities[0]['start'], 'end': entities[-1]['end']}


def _bio(label):
    """'B-PER' -> ('B', 'PER'); a label without a B-/I- prefix continues ('I', label)."""
    if label.startswith(('B-', 'I-')):
        return label[0], label[2:]
    return 'I', label


class QuestionAnsweringPipeline(Pipeline):
    """{'question', 'context'} -> {'score', 'start', 'end', 'answer'}: the best span, its
    character offsets in the context and the product of its start and end probabilities
    (softmax over [CLS] and the context tokens of its window, as HF's pipeline scored it)."""

    def __init__(self, model: ModelSource, max_answer_len: int = 15, doc_stride: int = 128,
                 max_question_len: int = 64, max_seq_len: int = 384, **kwargs: Any):
        super().__init__(model, **kwargs)
        check_block(self.block, (BERTForQA,), 'question-answering')
        self.max_answer_len = max_answer_len
        seq_len = min(max_seq_len, self.max_length)
        self.transform = SquadTransform(self.tokenizer, max_seq_length=seq_len,
                                        doc_stride=min(doc_stride, seq_len // 2),
                                        max_query_length=min(max_question_len, seq_len - 4),
                                        is_training=False)

    def __call__(self, inputs: dict | Iterable[dict] | None = None, question: str | None = None,
                 context: str | None = None, **kwargs: Any) -> dict | list | np.ndarray:
        """Also HF's call form pipe(question=..., context=...)."""
        if inputs is None:
            if question is None or context is None:
                raise TypeError('question-answering needs {"question": ..., "context": ...} '
                                'inputs, or question= and context=')
            inputs = {'question': question, 'context': context}
        return super().__call__(inputs, **kwargs)

    def _options(self, max_answer_len=None):
        length = max_answer_len or self.max_answer_len
        if not isinstance(length, int) or length < 1:
            raise ValueError(f'max_answer_len must be an integer >= 1; got {length!r}')
        return dict(max_answer_len=length)

    def _prepare(self, item):
        if not isinstance(item, dict) or not {'question', 'context'} <= set(item):
            raise ValueError("each question-answering input is a dict {'question': ..., "
                             f"'context': ...}}; got {item!r}")
        example = SquadExample('0', item['question'], item['context'], [], '')
        features = self.transform(example)
        rows = [(f.input_ids[:f.valid_length], f.token_types[:f.valid_length], f.valid_length)
                for f in features]
        return rows, (example, features)

    def _answer(self, outputs, context, max_answer_len):
        example, features = context
        starts = [out[0][:f.valid_length] for out, f in zip(outputs, features)]
        ends = [out[1][:f.valid_length] for out, f in zip(outputs, features)]
        best = best_spans(features, starts, ends, n_best_size=20,
                          max_answer_length=max_answer_len).get(0)
        if best is None:
            return {'score': 0.0, 'start': 0, 'end': 0, 'answer': ''}
        _, feature, s, e = best
        window = next(i for i, f in enumerate(features) if f is feature)
        allowed = feature.offsets[:feature.valid_length, 0] >= 0
        allowed[0] = True  # HF leaves [CLS] in the softmax (its "no answer" position)
        score = _masked_softmax(starts[window], allowed)[s] * _masked_softmax(ends[window],
                                                                              allowed)[e]
        start, end = int(feature.offsets[s, 0]), int(feature.offsets[e, 1])
        return {'score': float(score), 'start': start, 'end': end,
                'answer': example.context[start:end]}


def _masked_softmax(logits, allowed):
    """Softmax over the `allowed` positions (others -1e4, as HF masks them)."""
    x = np.where(allowed, logits.astype(np.float64), -1e4)
    x = np.exp(x - x.max())
    return x / x.sum()


class FeatureExtractionPipeline(Pipeline):
    """A text -> its token vectors as nested lists (1, tokens, units), as HF; pooling='mean' or
    'cls' -> one (units,) vector. return_tensors=True gives numpy arrays."""

    def __init__(self, model: ModelSource, pooling: str | None = None,
                 return_tensors: bool = False, **kwargs: Any):
        self.pooling = pooling
        super().__init__(model, **kwargs)
        self.return_tensors = return_tensors
        self._transform = BERTSentenceTransform(self.tokenizer, self.max_length, pad=False,
                                                pair=False)

    def _network(self, block):
        return SentencePooler(backbone(block), self.pooling)

    def _options(self, return_tensors=None):
        return dict(as_array=self.return_tensors if return_tensors is None else return_tensors)

    def _prepare(self, item):
        if not isinstance(item, str):
            raise TypeError(f'feature-extraction takes str texts; got {type(item).__name__}')
        row = self._transform(item).model_inputs()
        return [row], int(row[2])

    def _answer(self, outputs, context, as_array):
        vectors = outputs[0][0]
        if self.pooling is None:
            vectors = vectors[None, :context]  # (1, tokens, units)
        return vectors if as_array else vectors.tolist()


TASKS = {'text-classification': TextClassificationPipeline,
         'sentiment-analysis': TextClassificationPipeline,
         'regression': RegressionPipeline,
         'token-classification': TokenClassificationPipeline,
         'ner': TokenClassificationPipeline,
         'question-answering': QuestionAnsweringPipeline,
         'feature-extraction': FeatureExtractionPipeline}


def pipeline(task: str, model: ModelSource | None = None, **kwargs: Any) -> Pipeline:
    """HF-style `pipeline(task, model=folder)` -> a callable answering raw texts.

    task: one of TASKS. model: a save_pretrained (or transformers) folder, a block with vocab=,
    or get_model's (model, vocab). Common options: vocab, ctx, batch_size (32), progress
    (None: auto), max_length, lower, hybridize (True). Task options: top_k, function_to_apply
    (text-classification); aggregation_strategy, ignore_labels (token-classification);
    max_answer_len, doc_stride, max_question_len, max_seq_len (question-answering); pooling,
    return_tensors (feature-extraction).
    """
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; gluonbert pipelines: {", ".join(TASKS)}')
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model=: a folder written by save_pretrained "
                         '(or a transformers BERT folder), or a block with vocab=')
    return TASKS[task](model, **kwargs)
