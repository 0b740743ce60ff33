"""MLM + NSP pretraining: loss and accuracy against manual counts, batch stream, heads, script."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from gluonbert import get_model
from gluonbert.data import (SST2, BERTTokenizer, PretrainingExample, PretrainingExampleBuilder,
                            read_documents)
from gluonbert.train import TrainingLoop
from gluonbert.train import pretraining

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'model_zoo', 'bert'))
import pretrain  # noqa: E402


def test_mlm_accuracy_counts_match_a_manual_count():
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(3, 5, 11)).astype('float32')
    ids = rng.randint(0, 11, size=(3, 5))
    weights = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype='float32')
    logits[0, 1, ids[0, 1]] = logits[1, 4, ids[1, 4]] = 9.0  # two sure hits on real positions
    logits[0, 4, ids[0, 4]] = 9.0  # a hit on padding: must not count
    correct = total = 0
    for b in range(3):
        for p in range(5):
            if weights[b, p]:
                total += 1
                correct += int(np.argmax(logits[b, p]) == ids[b, p])
    counts = pretraining.mlm_accuracy_counts(mx.nd.array(logits), mx.nd.array(ids),
                                             mx.nd.array(weights))
    assert counts == (correct, total) and total == 9 and correct >= 2


def test_masked_lm_loss_averages_each_samples_real_positions():
    rng = np.random.RandomState(1)
    logits = rng.normal(size=(2, 4, 7)).astype('float32')
    ids = rng.randint(0, 7, size=(2, 4))
    weights = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype='float32')
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    expected = [-np.mean([log_probs[b, p, ids[b, p]] for p in range(4) if weights[b, p]])
                for b in range(2)]
    loss = pretraining.masked_lm_loss(mx.nd.array(logits), mx.nd.array(ids),
                                      mx.nd.array(weights))
    np.testing.assert_allclose(loss.asnumpy(), expected, rtol=1e-5)


def test_held_out_scores_equal_a_count_over_single_examples(corpus):
    bert, vocab = get_model('bert_2_128_2', pretrained=False, dropout=0.0)
    builder = PretrainingExampleBuilder(BERTTokenizer(vocab), max_seq_length=40,
                                        max_predictions_per_seq=6, seed=5)
    examples = builder.build(read_documents(corpus)[:4])[:7]
    scores = pretraining.evaluate(bert, examples, batch_size=3, progress=False)
    mlm_correct = mlm_total = nsp_correct = 0
    mlm_ce = nsp_ce = 0.0
    for ex in examples:
        n = int(ex.valid_length)
        _, _, nsp, mlm = bert(mx.nd.array([ex.input_ids]), mx.nd.array([ex.token_types]),
                              mx.nd.array([n]), mx.nd.array([ex.masked_positions]))
        nsp, mlm = nsp.asnumpy()[0], mlm.asnumpy()[0]
        for p in range(int(ex.masked_weights.sum())):
            mlm_total += 1
            mlm_correct += int(mlm[p].argmax() == ex.masked_ids[p])
            mlm_ce += np.log(np.exp(mlm[p] - mlm[p].max()).sum()) + mlm[p].max() - \
                mlm[p, ex.masked_ids[p]]
        nsp_correct += int(nsp.argmax() == ex.next_sentence_label)
        nsp_ce += np.log(np.exp(nsp).sum()) - nsp[ex.next_sentence_label]
    assert scores['mlm_accuracy'] == mlm_correct / mlm_total
    assert scores['nsp_accuracy'] == nsp_correct / len(examples)
    assert scores['mlm_loss'] == pytest.approx(mlm_ce / mlm_total, rel=1e-4)
    assert scores['nsp_loss'] == pytest.approx(nsp_ce / len(examples), rel=1e-4)


def fake_examples(lengths):
    """PretrainingExamples of the given lengths whose first token id is their index."""
    examples = []
    for index, n in enumerate(lengths):
        ids = np.full(n, 5, dtype=np.int32)
        ids[0] = index
        examples.append((ids, np.zeros(n, np.int32), np.int32(n), np.zeros(3, np.int32),
                         np.zeros(3, np.int32), np.ones(3, np.float32), np.int32(index % 2)))
    return [PretrainingExample(*e) for e in examples]


def firsts(batches):
    return [b[0].asnumpy()[:, 0].tolist() for b in batches]


def test_fixed_step_epochs_continue_one_stream_of_reshuffled_passes():
    examples = fake_examples([4, 6, 9, 12, 5, 7, 8, 10, 11, 3])
    one_pass, per_pass = pretraining.training_batches(examples, 3, seed=4)
    for k in range(2):
        ids = sorted(i for batch in firsts(one_pass(k)) for i in batch)
        assert ids == list(range(10))  # each pass holds every example once
    stream = firsts(one_pass(0)) + firsts(one_pass(1)) + firsts(one_pass(2))
    steps, per_epoch = pretraining.training_batches(examples, 3, seed=4,
                                                    batches_per_epoch=per_pass + 2)
    assert per_epoch == per_pass + 2
    # epochs of per_pass + 2 batches cut the same stream, the second starting mid-pass
    assert firsts(steps(0)) + firsts(steps(1)) == stream[:2 * per_epoch]
    assert firsts(steps(1)) == firsts(steps(1))  # reproducible on resume
    ids, types, lengths, positions, masked_ids, weights, labels = next(iter(steps(0)))
    assert ids.shape[1] == lengths.asnumpy().max() and weights.dtype == np.float32


def test_missing_heads_are_added_and_the_backbone_kept():
    bert, _ = get_model('bert_2_128_2', pretrained=False, use_pooler=True, use_decoder=False,
                        use_classifier=False)
    model, fresh = pretraining.with_pretraining_heads(bert)
    assert fresh == ['classifier', 'decoder']
    assert model.encoder is bert.encoder
    assert model.decoder.embed_weight is bert.encoder.word_embed.weight  # still tied
    np.testing.assert_array_equal(model.pooler.dense.weight.data().asnumpy(),
                                  bert.pooler.dense.weight.data().asnumpy())
    ids = mx.nd.array([[101, 2000, 2001, 102]])
    seq, pooled, nsp, mlm = model(ids, mx.nd.zeros((1, 4)), mx.nd.array([4]),
                                  mx.nd.array([[1, 2]]))
    assert nsp.shape == (1, 2) and mlm.shape == (1, 2, 30522)
    np.testing.assert_allclose(pooled.asnumpy(), bert(ids, mx.nd.zeros((1, 4)),
                                                      mx.nd.array([4]))[1].asnumpy(), atol=1e-6)
    full, _ = get_model('bert_2_128_2', pretrained=False)
    assert pretraining.with_pretraining_heads(full) == (full, [])


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """800 real SST-2 sentences as 80 documents of 10, in the blank-line format."""
    sentences = [t.strip() for t, _ in SST2.read(os.path.join(REPO, 'data', 'sst2',
                                                              'train.tsv'))][:800]
    path = tmp_path_factory.mktemp('corpus') / 'sst2.txt'
    path.write_text(''.join('\n'.join(sentences[i:i + 10]) + '\n\n'
                            for i in range(0, len(sentences), 10)), encoding='utf-8')
    return str(path)


def script_args(corpus, out, *extra):
    return ['--data', corpus, '--model', 'bert_2_128_2', '--from-scratch', '--max-seq-length', '48',
            '--max-predictions-per-seq', '8', '--batch-size', '16', '--lr', '3e-3',
            '--max-steps', '24', '--eval-every', '8', '--log-every', '4',
            '--held-out-fraction', '10', '--no-progress', '--output-dir', out] + list(extra)


@pytest.fixture(scope='module')
def finished(corpus, tmp_path_factory):
    """One uninterrupted 24-step run from scratch."""
    out = str(tmp_path_factory.mktemp('pretrain') / 'run')
    return pretrain.main(script_args(corpus, out)), out


def test_loss_goes_down_and_everything_is_written(finished):
    results, out = finished
    history = json.load(open(os.path.join(out, 'history.json')))
    losses = [h['loss'] for h in history if 'loss' in h]
    assert len(losses) == 6 and results['steps'] == 24
    assert losses[0] > 10 and losses[-1] < losses[0] - 1.5  # ln(30522) = 10.3 at the start
    before, after = results['held_out_before'], results['held_out']
    assert after['mlm_loss'] < before['mlm_loss'] - 1.5
    assert after['mlm_accuracy'] > before['mlm_accuracy']
    assert 0 <= after['nsp_accuracy'] <= 1
    saved = json.load(open(os.path.join(out, 'pretrain_metrics.json')))
    assert saved['held_out'] == after
    for name in ('curves.png', 'best.params', 'model/model.params', 'model/vocab.txt',
                 'export/model-symbol.json', 'export/model-0000.params'):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    # the checkpoint folder reloads through the registry with both heads
    model, _ = get_model('bert_2_128_2', pretrained=os.path.join(out, 'model'), dropout=0.0)
    assert model.use_decoder and model.use_classifier


def params_of(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def test_interrupted_run_resumes_to_the_same_parameters(corpus, finished, tmp_path,
                                                        monkeypatch):
    _, reference = finished
    out = str(tmp_path / 'run')
    fit = TrainingLoop.fit
    monkeypatch.setattr(TrainingLoop, 'fit', lambda self, *a, **kw: fit(self, *a, max_steps=9,
                                                                        **kw))
    pretrain.main(script_args(corpus, out))  # "dies" after step 9; last checkpoint: step 8
    monkeypatch.setattr(TrainingLoop, 'fit', fit)
    assert sorted(os.listdir(os.path.join(out, 'checkpoints'))) == ['LATEST', 'step-00000008']
    steps_run, step = [], TrainingLoop._step
    monkeypatch.setattr(TrainingLoop, '_step', lambda self, group, index: (
        steps_run.append(index), step(self, group, index))[1])
    resumed = pretrain.main(['--resume', '--output-dir', out])  # the rest from run_config.json
    assert resumed['steps'] == 24 and steps_run == list(range(8, 24))  # continued, not redone
    final = os.path.join('checkpoints', 'step-00000024', 'model.params')
    expected = params_of(os.path.join(reference, final))
    actual = params_of(os.path.join(out, final))
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=1e-5, err_msg=name)


def test_run_config_and_the_flags_a_resume_cannot_change(finished, capsys):
    results, out = finished
    config = json.load(open(os.path.join(out, 'run_config.json')))
    assert config['arguments']['max_steps'] == 24 and config['arguments']['lr'] == 3e-3
    assert config['resolved']['config']['num_layers'] == 2 and config['seed'] == 2
    assert json.load(open(os.path.join(out, 'pretrain_metrics.json')))['hyperparameters'][
        'max_steps'] == 24
    for flags, named in (
            (['--max-steps', '48'], "--max-steps 48 conflicts with the run in {}, which was "
                                    "trained with --max-steps 24"),
            (['--units', '256'], "--units 256 conflicts with the run in {}, which was trained "
                                 "with --units None")):
        with pytest.raises(SystemExit) as exit_info:
            pretrain.main(['--resume', '--output-dir', out] + flags)
        assert exit_info.value.code == 2
        assert named.format(out) in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(['--data', str(tmp_path / 'nothing.txt'), '--from-scratch',
                       '--output-dir', str(tmp_path / 'out')])
    assert exit_info.value.code == 2  # at parse time, argparse's format
    assert '--data {}: no such file'.format(tmp_path / 'nothing.txt') in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'out')
