"""SQuAD v1.1 features on the real subset: windows, answer positions, exact text recovery."""
import json

import numpy as np
import pytest
import transformers

from gluonbert import metrics
from gluonbert.data import (BERTTokenizer, BERTVocab, SquadExample, SquadTransform,
                            bundled_vocab_path, gold_answers, predict_answers, read_squad)

from conftest import REPO, SHARED, SLICE, shared_path  # noqa: E402,F401


@pytest.fixture(scope='module')
def tokenizer():
    return BERTTokenizer(BERTVocab.from_file(bundled_vocab_path()))


@pytest.fixture(scope='module')
def train_examples():
    return read_squad(shared_path('squad', 'train-v1.1-subset.json'))


@pytest.fixture(scope='module')
def dev_examples():
    return read_squad(shared_path('squad', 'dev-v1.1-subset.json'))


def oracle_logits(features):
    """Logits that put all mass on the labeled positions (a perfect model)."""
    starts, ends = [], []
    for f in features:
        start, end = np.zeros(len(f.input_ids)), np.zeros(len(f.input_ids))
        start[f.start_position] = end[f.end_position] = 10.0
        starts.append(start)
        ends.append(end)
    return starts, ends


def test_reader(train_examples, dev_examples):
    assert len(train_examples) == 269 and len(dev_examples) == 810
    first = dev_examples[0]
    assert first.question == 'Which NFL team represented the AFC at Super Bowl 50?'
    assert first.answers[0] == ('Denver Broncos', 177) and first.title == 'Super_Bowl_50'


def inside_a_token(tokenizer, example):
    """True when the first answer starts or ends strictly inside a word piece."""
    text, start = example.answers[0]
    offsets = tokenizer.encode(example.context).offsets
    starts, ends = {s for s, _ in offsets}, {e for _, e in offsets}
    return start not in starts or start + len(text) not in ends


@pytest.mark.parametrize('split', ['train', 'dev'])
def test_answers_map_to_tokens_and_back_to_the_exact_text(tokenizer, train_examples,
                                                          dev_examples, split):
    examples = train_examples if split == 'train' else dev_examples
    transform = SquadTransform(tokenizer, max_seq_length=384, doc_stride=128)
    features = transform.features(examples)
    predictions = predict_answers(examples, features, *oracle_logits(features))
    # A perfect model gets the annotated text back character for character, except when the
    # annotation starts or ends inside a word piece ('L' of 'NFL'): then the smallest token span
    # holding it comes back.
    for ex in examples:
        text = ex.answers[0][0]
        if inside_a_token(tokenizer, ex):
            assert text in predictions[ex.qas_id] != text
        else:
            assert predictions[ex.qas_id] == text, ex.qas_id
    assert transform.stats['answers_without_tokens'] == 0
    assert sum(inside_a_token(tokenizer, ex) for ex in examples) < 0.03 * len(examples)


def test_oracle_predictions_score_as_the_official_metric_says(tokenizer, dev_examples):
    transform = SquadTransform(tokenizer, max_seq_length=384, doc_stride=128)
    features = transform.features(dev_examples)
    predictions = predict_answers(dev_examples, features, *oracle_logits(features))
    result = metrics.squad_evaluate(gold_answers(dev_examples), predictions)
    assert result['exact_match'] > 97.5 and result['f1'] > 97.5
    broken = [ex for ex in dev_examples
              if max(metrics.squad_exact_match(predictions[ex.qas_id], gold)
                     for gold, _ in ex.answers) == 0]
    assert broken and all(inside_a_token(tokenizer, ex) for ex in broken)


def test_small_windows_slide_with_doc_stride_and_keep_the_answer(tokenizer, train_examples):
    transform = SquadTransform(tokenizer, max_seq_length=64, doc_stride=16, max_query_length=16)
    features = transform.features(train_examples[:40])
    assert transform.stats['contexts_split'] == 40  # Wikipedia paragraphs need many windows
    assert transform.stats['questions_truncated'] > 0
    by_example = {}
    for f in features:
        by_example.setdefault(f.example_index, []).append(f)
        assert f.input_ids[0] == 101 and int(f.valid_length) <= 64
        n = int(f.valid_length)
        assert f.input_ids[n - 1] == 102 and not f.input_ids[n:].any()
        question_end = int(np.argmax(f.token_types))  # first segment-1 position
        assert f.input_ids[question_end - 1] == 102 and question_end - 2 <= 16
    for index, windows in by_example.items():
        example = train_examples[index]
        context_ids = tokenizer.encode_ids(example.context)
        # windows start doc_stride tokens apart and together cover the whole context
        covered = set()
        for w, f in enumerate(windows):
            in_context = np.nonzero(f.offsets[:, 0] >= 0)[0]
            starts = [tuple(o) for o in f.offsets[in_context]]
            first = tokenizer.encode(example.context).offsets.index(starts[0])
            assert first == 16 * w
            covered.update(range(first, first + len(in_context)))
            np.testing.assert_array_equal(f.input_ids[in_context],
                                          context_ids[first:first + len(in_context)])
        assert covered == set(range(len(context_ids)))
        # exactly one window owns each context token (max context)
        owners = sum(f.is_max_context.sum() for f in windows)
        assert owners == len(context_ids)
        with_answer = [f for f in windows if f.start_position > 0]
        assert with_answer, example.qas_id
        for f in with_answer:
            text = example.context[f.offsets[f.start_position, 0]:f.offsets[f.end_position, 1]]
            assert example.answers[0][0] in text


def test_first_window_matches_hf_question_context_encoding(tokenizer, dev_examples):
    hf = transformers.BertTokenizerFast(vocab=bundled_vocab_path(), do_lower_case=True)
    transform = SquadTransform(tokenizer, max_seq_length=192, doc_stride=64, is_training=False)
    for example in dev_examples[:100]:
        first = transform(example)[0]
        ref = hf(example.question, example.context, truncation='only_second', max_length=192,
                 return_offsets_mapping=True)
        n = int(first.valid_length)
        assert first.input_ids[:n].tolist() == ref['input_ids']
        assert first.token_types[:n].tolist() == ref['token_type_ids']
        context = [tuple(o) for o, t in zip(ref['offset_mapping'], ref['token_type_ids'])
                   if t == 1][:-1]
        assert [tuple(o) for o in first.offsets[first.offsets[:, 0] >= 0]] == context
        assert first.start_position == first.end_position == 0  # not training


def test_empty_context_gives_one_window(tokenizer):
    example = SquadExample('q0', 'Who?', '', [], '')
    (feature,) = SquadTransform(tokenizer, 32, 8, max_query_length=16)(example)
    assert feature.input_ids[:4].tolist() == [101, 2040, 1029, 102]
    assert int(feature.valid_length) == 5 and feature.start_position == 0
    assert predict_answers([example], [feature], [np.zeros(32)], [np.zeros(32)]) == {'q0': ''}


def test_inconsistent_answer_is_an_error_naming_the_question(tmp_path):
    data = {'data': [{'title': 't', 'paragraphs': [{'context': 'Denver won the game.', 'qas': [
        {'id': 'abc123', 'question': 'Who won?', 'answers': [{'text': 'Denver',
                                                               'answer_start': 3}]}]}]}]}
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    with pytest.raises(ValueError, match=r"question abc123: answer 'Denver' is not at character 3"):
        read_squad(str(path))


def test_bad_configuration(tokenizer):
    with pytest.raises(ValueError, match='leaves no room for context'):
        SquadTransform(tokenizer, max_seq_length=64, max_query_length=64)
