"""SQuAD fine-tuning: batches, span loss, batched prediction, n-best decoding, the zoo script."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from gluonbert import BERTForQA, get_model, import_model, metrics
from gluonbert.data import BERTTokenizer, SquadTransform, gold_answers, read_squad
from gluonbert import from_pretrained
from gluonbert.errors import DamagedFileError
from gluonbert.train import squad
from gluonbert.train.metrics_log import read_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'squad')
sys.path.insert(0, os.path.join(REPO, 'model_zoo', 'bert'))
import finetune_squad  # noqa: E402

# Short windows keep the tiny model fast; the contexts still need several windows each.
WINDOW = dict(max_seq_length=64, doc_stride=24, max_query_length=16)


def squad_path(name):
    path = os.path.join(SHARED, name)
    if not os.path.isfile(path):
        pytest.skip(f'real data not found at {path} (../shared/data relative to the repo)')
    return path


def write_subset(source, path, num_questions):
    """The first `num_questions` questions of a SQuAD file, as a SQuAD file."""
    data = json.load(open(source, encoding='utf-8'))
    paragraphs, left = [], num_questions
    for paragraph in data['data'][0]['paragraphs']:
        if left == 0:
            break
        paragraphs.append(dict(paragraph, qas=paragraph['qas'][:left]))
        left -= len(paragraphs[-1]['qas'])
    subset = {'version': data.get('version'), 'data': [dict(data['data'][0],
                                                            paragraphs=paragraphs)]}
    path.write_text(json.dumps(subset), encoding='utf-8')
    return str(path)


@pytest.fixture(scope='module')
def tiny():
    """A random bert_2_128_2 span model (no dropout) and its tokenizer."""
    bert, vocab = get_model('bert_2_128_2', pretrained=False, use_pooler=False, use_decoder=False,
                            use_classifier=False, dropout=0.0)
    net = BERTForQA(bert)
    net.initialize_head()
    return net, BERTTokenizer(vocab)


@pytest.fixture(scope='module')
def dev_examples():
    return read_squad(squad_path('dev-v1.1-subset.json'))[:40]


def test_training_batches_cover_every_window_once_per_epoch(tiny, dev_examples):
    _, tokenizer = tiny
    features = SquadTransform(tokenizer, **WINDOW).features(dev_examples[:20])
    batches, per_epoch = squad.training_batches(features, batch_size=8, seed=3)
    epoch = list(batches(0))
    assert len(epoch) == per_epoch
    seen = []
    for batch in epoch:
        assert all(a.dtype == np.int32 for a in batch)
        ids, types, lengths, starts, ends = (a.asnumpy() for a in batch)
        assert ids.shape == types.shape and ids.shape[1] == lengths.max()
        for row, n in enumerate(lengths):
            seen.append((tuple(ids[row, :n]), starts[row], ends[row]))
            assert not ids[row, n:].any()
    expected = [(tuple(f.input_ids[:int(f.valid_length)]), f.start_position, f.end_position)
                for f in features]
    assert sorted(seen) == sorted(expected)
    again = [b[0].asnumpy().tolist() for b in batches(0)]
    assert again == [b[0].asnumpy().tolist() for b in epoch]  # same order on resume
    assert again != [b[0].asnumpy().tolist() for b in batches(1)]  # reshuffled per epoch


def test_span_loss_is_the_mean_of_start_and_end_cross_entropy():
    start = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -1e4]], dtype='float32')
    end = np.array([[0.0, 1.0, 2.0, 0.5], [1.0, 0.0, 0.0, -1e4]], dtype='float32')

    def fixed_net(*inputs):
        return mx.nd.array(start), mx.nd.array(end)
    loss = squad.span_loss()(fixed_net, None, None, None, mx.nd.array([1, 2]),
                             mx.nd.array([3, 0])).asnumpy()

    def ce(logits, label):
        return np.log(np.exp(logits).sum()) - logits[label]
    expected = [(ce(start[0], 1) + ce(end[0], 3)) / 2, (ce(start[1], 2) + ce(end[1], 0)) / 2]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_batched_prediction_equals_one_window_at_a_time(tiny, dev_examples):
    net, tokenizer = tiny
    features = SquadTransform(tokenizer, **WINDOW, is_training=False).features(dev_examples[:2])[:7]
    starts, ends = squad.predict_logits(net, features, batch_size=3, progress=False)
    assert len(starts) == len(features)
    for f, start, end in zip(features, starts, ends):
        n = int(f.valid_length)
        assert start.shape == end.shape == (n,)
        one = net(mx.nd.array(f.input_ids[None, :n]), mx.nd.array(f.token_types[None, :n]),
                  mx.nd.array([n]))
        np.testing.assert_allclose(start, one[0].asnumpy()[0], atol=1e-4)
        np.testing.assert_allclose(end, one[1].asnumpy()[0], atol=1e-4)


def inside_a_token(tokenizer, example):
    """True when the first answer starts or ends strictly inside a word piece."""
    text, start = example.answers[0]
    offsets = tokenizer.encode(example.context).offsets
    return start not in {s for s, _ in offsets} or start + len(text) not in {e for _, e in offsets}


def test_nbest_decoding_finds_the_gold_span_among_noise_and_traps(tiny, dev_examples):
    """Logits peaking at each window's gold start/end (from the training-mode features), plus
    noise, a higher-scoring span longer than max_answer_length, and peaks on question tokens:
    the decoder must return the gold text."""
    _, tokenizer = tiny
    labeled = SquadTransform(tokenizer, **WINDOW).features(dev_examples)
    rng = np.random.RandomState(0)
    starts, ends = [], []
    for f in labeled:
        n = int(f.valid_length)
        start, end = rng.normal(0, 0.1, n), rng.normal(0, 0.1, n)
        question = np.nonzero(f.token_types[:n] == 0)[0][1:-1]
        start[question] = end[question] = 50.0  # not context: must be ignored
        context = np.nonzero(f.offsets[:n, 0] >= 0)[0]
        start[context[0]], end[context[-1]] = 9.0, 9.0  # a long span over the whole window
        if f.start_position > 0:
            start[f.start_position] = end[f.end_position] = 8.0
        starts.append(start)
        ends.append(end)
    longest = max(f.end_position - f.start_position + 1 for f in labeled)
    predictions = squad.predict_answers(dev_examples, labeled, starts, ends, n_best_size=20,
                                        max_answer_length=longest)
    assert set(predictions) == {ex.qas_id for ex in dev_examples}
    exact = 0
    for ex in dev_examples:
        if inside_a_token(tokenizer, ex):
            assert ex.answers[0][0] in predictions[ex.qas_id]
        else:
            exact += predictions[ex.qas_id] == ex.answers[0][0]
    assert exact == sum(not inside_a_token(tokenizer, ex) for ex in dev_examples) >= 35
    assert metrics.squad_evaluate(gold_answers(dev_examples), predictions)['f1'] > 90


def run_script(tmp_path, *extra):
    dev = write_subset(squad_path('dev-v1.1-subset.json'), tmp_path / 'dev.json', 10)
    argv = ['--train-file', squad_path('train-v1.1-subset.json'), '--dev-file', dev,
            '--model', 'bert_2_128_2', '--from-scratch', '--max-train-samples', '12',
            '--max-seq-length', '64',
            '--doc-stride', '24', '--max-query-length', '16', '--batch-size', '16',
            '--epochs', '1', '--lr', '1e-3', '--dropout', '0', '--no-progress',
            '--output-dir', str(tmp_path / 'run')] + list(extra)
    return finetune_squad.main(argv), str(tmp_path / 'run'), dev


def test_script_trains_predicts_every_question_and_exports(tmp_path):
    results, out, dev = run_script(tmp_path)
    examples = read_squad(dev)
    predictions = json.load(open(os.path.join(out, 'predictions.json'), encoding='utf-8'))
    assert set(predictions) == {ex.qas_id for ex in examples} and len(examples) == 10
    for ex in examples:
        assert predictions[ex.qas_id] in ex.context  # a span of the original text
    saved = json.load(open(os.path.join(out, 'dev_metrics.json')))
    assert saved['dev_metrics'] == results['dev_metrics']
    official = metrics.squad_evaluate(gold_answers(examples), predictions)
    assert saved['dev_metrics'] == dict(exact_match_percent=official['exact_match'],
                                        f1_percent=official['f1'])
    assert 0 <= saved['dev_metrics']['exact_match_percent'] <= \
        saved['dev_metrics']['f1_percent'] <= 100
    assert saved['train_questions'] == 12 and saved['dev_questions'] == 10
    for name in ('best.params', 'curves.png', 'train.log', 'export/model-symbol.json',
                 'export/model-0000.params', 'export/vocab.txt', 'export/meta.json'):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    # the export computes the logits of the best parameters
    bert, vocab = get_model('bert_2_128_2', pretrained=False, use_pooler=False, use_decoder=False,
                            use_classifier=False, dropout=0.0)
    net = BERTForQA(bert)
    net.load_parameters(os.path.join(out, 'best.params'))
    features = SquadTransform(BERTTokenizer(vocab), **WINDOW, is_training=False)(examples[0])
    inputs = squad.batch_inputs(features)
    exported = import_model(os.path.join(out, 'export', 'model'))(*inputs)
    for mine, theirs in zip(net(*inputs), exported):
        np.testing.assert_allclose(mine.asnumpy(), theirs.asnumpy(), atol=1e-5)
    # inference from the saved parameters scores as the predictions cached during training
    again = finetune_squad.main(['--only-inference', '--output-dir', out])
    assert again['dev_metrics'] == results['dev_metrics']
    assert again['output_dir'].startswith(os.path.join(out, 'inference-'))
    assert json.load(open(os.path.join(again['output_dir'], 'predictions.json'))) == predictions
    assert json.load(open(os.path.join(out, 'dev_metrics.json'))) == saved  # not overwritten
    # an inference run that fails on its parameters leaves no inference-<time>/ folder
    before = sorted(os.listdir(out))
    broken = tmp_path / 'broken.params'
    broken.write_bytes(open(os.path.join(out, 'best.params'), 'rb').read()[:100])
    with pytest.raises(DamagedFileError, match='broken.params'):
        finetune_squad.main(['--only-inference', '--output-dir', out, '--params', str(broken)])
    assert sorted(os.listdir(out)) == before
    config = json.load(open(os.path.join(out, 'run_config.json')))
    assert config['arguments']['max_seq_length'] == 64 and config['resolved']['task'] == \
        'squad1.1'
    assert saved['hyperparameters']['lr'] == 1e-3 and saved['hyperparameters']['seed'] == 2
    dev_lines = [line for line in read_metrics(out) if line['split'] == 'dev']
    assert {line['name'] for line in dev_lines} == {'exact_match_percent', 'f1_percent'}
    # the save_pretrained folder holds the best span head
    folder = from_pretrained(results['model_folder'])
    for mine, theirs in zip(net(*inputs), folder(*inputs)):
        np.testing.assert_allclose(mine.asnumpy(), theirs.asnumpy(), atol=1e-5)


def test_script_needs_training_data(tmp_path):
    with pytest.raises(SystemExit, match='no training data'):
        finetune_squad.main(['--dev-file', __file__, '--from-scratch', '--output-dir',
                             str(tmp_path / 'out')])
    assert not os.path.exists(tmp_path / 'out')
