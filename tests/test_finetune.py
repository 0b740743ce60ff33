"""Fine-tuning path: features, sliding windows, the zoo script end to end, export -> predict."""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluonbert import get_model
from gluonbert.data import BERTTokenizer, SST2, TextDataset
from gluonbert.inference import SentenceClassifier, embed, plot_similarity, predict_sentiment
from gluonbert.train import classification as cls

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLICE = os.path.join(REPO, 'data', 'sst2')
sys.path.insert(0, os.path.join(REPO, 'model_zoo', 'bert'))
import finetune_classifier  # noqa: E402


@pytest.fixture(scope='module')
def tokenizer():
    _, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False, use_classifier=False)
    return BERTTokenizer(vocab)


def test_sliding_windows_cover_a_long_text_and_average_per_example(tokenizer):
    long_text = ' '.join(['great'] * 30 + ['awful'] * 30)
    data = TextDataset([(long_text, 1), ('short one', 0)])
    features, report = cls.make_features(SST2, data, tokenizer, max_len=22, window_stride=10,
                                         progress=False)
    windows = [f for f in features if f.example_id == 0]
    assert report.startswith('1 of 2 texts were split into sliding windows of 20 tokens')
    assert [int(f.valid_length) for f in windows] == [22] * 5  # starts 0, 10, 20, 30, 40
    covered = [t for f in windows for t in f.input_ids[1:int(f.valid_length) - 1]]
    assert set(covered) == set(tokenizer.encode_ids(long_text))
    assert windows[-1].input_ids[int(windows[-1].valid_length) - 2] == \
        tokenizer.vocab['awful']  # the last window reaches the end of the text
    outputs = np.arange(len(features) * 2, dtype='float32').reshape((-1, 2))
    means, labels = cls.aggregate_windows(outputs, features)
    np.testing.assert_allclose(means[0], outputs[:5].mean(axis=0))
    np.testing.assert_allclose(means[1], outputs[5])
    assert labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match='window_stride=30 must be in'):
        cls.make_features(SST2, data, tokenizer, max_len=22, window_stride=30, progress=False)


def test_truncation_is_reported(tokenizer):
    data = TextDataset([(' '.join(['word'] * 50), 1), ('short', 0)])
    _, report = cls.make_features(SST2, data, tokenizer, max_len=16, progress=False)
    assert report.startswith('1 of 2 examples (50.00%) were truncated to max_seq_length=16')


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    """One short real run of the script (96 SST-2 sentences, tiny random model)."""
    out = str(tmp_path_factory.mktemp('finetune') / 'run')
    argv = ['--task', 'sst-2', '--data-dir', SLICE, '--model', 'bert_2_128_2', '--from-scratch',
            '--max-train-samples', '96', '--batch-size', '16', '--epochs', '1', '--dropout',
            '0.0', '--max-len', '32', '--lr', '1e-3', '--no-progress', '--output-dir', out]
    return finetune_classifier.main(argv), out


def test_script_trains_exports_and_the_export_predicts_like_the_model(trained_run):
    results, out = trained_run
    for name in ('dev_metrics.json', 'best.params', 'curves.png', 'train.log',
                 'export/model-symbol.json', 'export/model-0000.params', 'export/vocab.txt',
                 'export/meta.json'):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    saved = json.load(open(os.path.join(out, 'dev_metrics.json')))
    assert saved['dev_samples'] == 872 and saved['train_samples'] == 96
    assert 0 < saved['dev_metrics']['accuracy'] < 1
    classifier = SentenceClassifier(os.path.join(out, 'export'))
    sentences = ['a gorgeous , witty film', 'tedious and clumsy']
    probs = classifier.predict_proba(sentences)
    # the same parameters in a freshly built imperative net give the same probabilities
    bert, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                            use_classifier=False, dropout=0)
    from gluonbert import BERTClassifier
    net = BERTClassifier(bert, 2)
    net.load_parameters(os.path.join(out, 'best.params'))
    tok = BERTTokenizer(vocab)
    for sentence, p in zip(sentences, probs):
        ids = [vocab['[CLS]']] + tok.encode_ids(sentence) + [vocab['[SEP]']]
        logits = net(mx.nd.array([ids]), mx.nd.zeros((1, len(ids))), mx.nd.array([len(ids)]))
        np.testing.assert_allclose(mx.nd.softmax(logits).asnumpy()[0], p, atol=1e-5)
        assert predict_sentiment(net, tok, sentence, labels=('0', '1')) == \
            classifier.predict([sentence])[0]


def test_only_inference_needs_only_the_output_dir_and_writes_beside_the_run(trained_run,
                                                                          capsys, tmp_path):
    results, out = trained_run
    record = open(os.path.join(out, 'dev_metrics.json')).read()
    again = finetune_classifier.main(['--only-inference', '--output-dir', out,
                                      '--dtype', 'float16'])  # ignored: evaluation is float32
    assert again['dev_metrics'] == results['dev_metrics']
    assert again['hyperparameters']['max_len'] == 32 and again['model'] == 'bert_2_128_2'
    folder = again['output_dir']
    assert os.path.dirname(folder) == out and os.path.basename(folder).startswith('inference-')
    assert json.load(open(os.path.join(folder, 'dev_metrics.json')))['dev_metrics'] == \
        results['dev_metrics']
    assert json.load(open(os.path.join(folder, 'run_config.json')))['arguments'][
        'only_inference'] is True
    assert open(os.path.join(out, 'dev_metrics.json')).read() == record  # not overwritten
    with pytest.raises(SystemExit):
        finetune_classifier.main(['--only-inference', '--output-dir', out, '--pooling', 'mean'])
    assert f"--pooling 'mean' conflicts with the run in {out}, which was trained with " \
           "--pooling 'cls'" in capsys.readouterr().err
    # without a run_config.json (an older run, or --params elsewhere) every flag is given
    with pytest.raises(SystemExit, match='does not fit a head with --pooling mean: it was '
                                         r'trained with --pooling cls \(it has pooler weights\); '
                                         'rerun with --pooling cls'):
        finetune_classifier.main(['--task', 'sst-2', '--data-dir', SLICE, '--model',
                                  'bert_2_128_2', '--max-len', '32', '--no-progress',
                                  '--only-inference', '--output-dir', str(tmp_path),
                                  '--params', os.path.join(out, 'best.params'),
                                  '--pooling', 'mean'])
    assert os.listdir(tmp_path) == []  # the refused run left no inference-<time>/ folder


def test_run_config_records_the_run_and_a_used_output_dir_is_refused(trained_run):
    results, out = trained_run
    config = json.load(open(os.path.join(out, 'run_config.json')))
    assert config['arguments']['lr'] == 1e-3 and config['arguments']['max_len'] == 32
    assert config['arguments']['epochs'] == 1 and config['seed'] == 2
    assert config['resolved']['task']['name'] == 'SST-2'
    assert config['resolved']['task']['labels'] == ['0', '1']
    assert set(config['versions']) == {'gluonbert', 'mxnet', 'numpy', 'python'}
    assert '--max-len 32' in config['command'] and config['date'].startswith('20')
    saved = json.load(open(os.path.join(out, 'dev_metrics.json')))
    assert saved['hyperparameters'] == dict(
        seed=2, lr=1e-3, epochs=1, batch_size=16, accumulate=1, max_len=32, dtype='float32',
        warmup_ratio=0.1, weight_decay=0.01, dropout=0.0, ema_decay=None)
    with pytest.raises(SystemExit, match='holds an earlier run .* pass --resume to continue it, '
                                         '--overwrite-output-dir to replace it'):
        finetune_classifier.main(['--task', 'sst-2', '--data-dir', SLICE, '--model',
                                  'bert_2_128_2', '--from-scratch', '--output-dir', out])


def test_metrics_jsonl_and_the_model_folder(trained_run):
    from gluonbert import from_pretrained
    from gluonbert.train.metrics_log import read_metrics
    results, out = trained_run
    lines = read_metrics(out)
    train = [line for line in lines if line['split'] == 'train']
    assert {line['name'] for line in train} == {'loss', 'lr'}
    assert [(line['step'], line['name']) for line in lines if line['split'] == 'dev'] == \
        [(results['steps'], 'accuracy')]
    final = [line for line in lines if line['split'] == 'dev_final']
    assert final == [dict(step=results['steps'], split='dev_final', name='accuracy',
                          value=results['dev_metrics']['accuracy'])]
    assert json.load(open(os.path.join(out, 'export', 'meta.json')))['pair'] is False
    net = from_pretrained(results['model_folder'])
    assert net.pretrained_info.labels == ['0', '1'] and net.pretrained_info.max_length == 32
    reference = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                          use_classifier=False, dropout=0)[0]
    from gluonbert import BERTClassifier
    best = BERTClassifier(reference, 2)
    best.load_parameters(os.path.join(out, 'best.params'))
    ids = mx.nd.array([[2, 1000, 1001, 3]])
    args = (ids, mx.nd.zeros((1, 4)), mx.nd.array([4]))
    np.testing.assert_allclose(net(*args).asnumpy(), best(*args).asnumpy(), atol=1e-5)


def test_resume_with_more_epochs_continues_the_schedule(tmp_path):
    train = write_text_label_csv(tmp_path / 'reviews.csv', rows=48)
    out = str(tmp_path / 'run')
    first = finetune_classifier.main(['--train-file', train, '--model', 'bert_2_128_2',
                                      '--from-scratch', '--batch-size', '8', '--epochs', '1',
                                      '--max-len', '16', '--log-every', '1',
                                      '--output-dir', out])
    again = finetune_classifier.main(['--resume', '--output-dir', out, '--epochs', '2'])
    assert again['steps'] > first['steps'] and again['hyperparameters']['epochs'] == 2
    lrs = [h['lr'] for h in json.load(open(os.path.join(out, 'history.json'))) if 'lr' in h]
    assert len(lrs) == again['steps'] == 12 and first['steps'] == 6
    # the first run's schedule reached 0 at step 7; the rebuilt one decays to 0 at step 13
    assert all(lr > 0 for lr in lrs) and lrs[6] > lrs[5]
    np.testing.assert_allclose(lrs[6:], [5e-5 * (12 - s) / (12 - 1) for s in range(6, 12)])
    config = json.load(open(os.path.join(out, 'run_config.json')))
    assert config['arguments']['epochs'] == 2 and len(config['commands']) == 2
    with pytest.raises(SystemExit):
        finetune_classifier.main(['--resume', '--output-dir', out, '--model', 'bert_4_256_4'])
    empty = tmp_path / 'empty.csv'
    empty.write_text('text,label\n')
    with pytest.raises((ValueError, SystemExit), match='empty.csv'):
        finetune_classifier.main(['--train-file', str(empty), '--model', 'bert_2_128_2',
                                  '--from-scratch', '--output-dir', out, '--overwrite-output-dir'])
    # a mistake found while reading the inputs leaves the earlier run as it was
    assert os.path.isfile(os.path.join(out, 'best.params'))
    assert len(json.load(open(os.path.join(out, 'run_config.json')))['commands']) == 2
    fresh = finetune_classifier.main(['--train-file', train, '--model', 'bert_2_128_2',
                                      '--from-scratch', '--batch-size', '8', '--epochs', '1',
                                      '--max-len', '16', '--output-dir', out,
                                      '--overwrite-output-dir'])
    assert fresh['steps'] == 6 and fresh['dev_metrics'] == first['dev_metrics']
    assert sorted(os.listdir(os.path.join(out, 'checkpoints'))) == ['LATEST', 'step-00000006']
    assert len(json.load(open(os.path.join(out, 'run_config.json')))['commands']) == 1


def test_custom_csv_task_with_held_out_dev_and_test_predictions(tmp_path):
    rows = ['review,sentiment'] + [f'"{w}, really {w}",{s}' for w, s in
                                   [('great', 'positive'), ('awful', 'negative')] * 20]
    train = tmp_path / 'reviews.csv'
    train.write_text('\n'.join(rows) + '\n')
    test = tmp_path / 'unlabeled.csv'
    test.write_text('review\ngreat stuff\nawful stuff\nmeh\n')
    results = finetune_classifier.main([
        '--task', 'custom', '--train-file', str(train), '--test-file', str(test),
        '--text-columns', 'review', '--label-column', 'sentiment', '--model', 'bert_2_128_2',
        '--from-scratch', '--batch-size', '8', '--epochs', '1', '--max-len', '16',
        '--dev-fraction', '0.25', '--class-weights', 'balanced', '--pooling', 'mean',
        '--no-progress', '--output-dir', str(tmp_path / 'o')])
    assert results['dev_samples'] == 10 and results['train_samples'] == 30
    assert results['pooling'] == 'mean'
    assert 'pooler' not in open(os.path.join(results['export'], 'model-symbol.json')).read()
    assert set(results['dev_metrics']) == {'accuracy', 'f1'}
    lines = open(results['test_predictions']).read().splitlines()
    assert lines[0] == 'index\tprediction' and len(lines) == 4
    predicted = [line.split('\t')[1] for line in lines[1:]]
    assert set(predicted) <= {'negative', 'positive'}
    exported = SentenceClassifier(results['export'])  # the mean-pooling graph, re-imported
    assert exported.predict(['great stuff', 'awful stuff', 'meh']) == predicted


def test_custom_task_needs_text_columns(tmp_path):
    with pytest.raises(SystemExit, match='--task custom needs --text-columns'):
        finetune_classifier.main(['--task', 'custom', '--train-file', os.path.join(SLICE,
                                                                                   'dev.tsv'),
                                  '--from-scratch', '--output-dir', str(tmp_path)])


def test_embeddings_and_similarity_heatmap(tmp_path):
    bert, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                            use_classifier=False, dropout=0)
    tok = BERTTokenizer(vocab)
    sentences = ['a cat sat on the mat', 'a cat sat on the mat today', 'stocks fell']
    vectors = embed(bert, tok, sentences, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    # equals the mean over valid positions of a single-sentence forward pass
    ids = [vocab['[CLS]']] + tok.encode_ids(sentences[2]) + [vocab['[SEP]']]
    seq = bert(mx.nd.array([ids]), mx.nd.zeros((1, len(ids))))[0].asnumpy()[0]
    mean = seq.mean(axis=0)
    np.testing.assert_allclose(vectors[2], mean / np.linalg.norm(mean), atol=1e-5)
    sims = plot_similarity(sentences, vectors, str(tmp_path / 'sim.png'))
    assert sims.shape == (3, 3) and np.allclose(np.diag(sims), 1, atol=1e-5)
    assert open(tmp_path / 'sim.png', 'rb').read(4) == b'\x89PNG'


def test_monitor_must_be_a_metric_of_the_task(tmp_path):
    with pytest.raises(SystemExit, match='--monitor mcc: task SST-2 reports accuracy'):
        finetune_classifier.main(['--task', 'sst-2', '--data-dir', str(SLICE), '--monitor', 'mcc',
                                  '--model', 'bert_2_128_2', '--from-scratch',
                                  '--max-train-samples', '8',
                                  '--epochs', '1', '--output-dir', str(tmp_path)])


def test_pooling_probe_ridge_separates_what_is_separable_and_not_noise():
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    import pooling_probe
    rng = np.random.RandomState(0)
    x = rng.normal(size=(400, 8))
    y = (x[:, 3] > 0).astype(int)
    assert pooling_probe.ridge_accuracy(x[:300], y[:300], x[300:], y[300:], 1.0) >= 0.97
    noise = rng.randint(0, 2, size=400)
    assert abs(pooling_probe.ridge_accuracy(x[:300], noise[:300], x[300:], noise[300:], 1.0)
               - 0.5) < 0.15


def write_text_label_csv(path, rows=24):
    """A `text,label` CSV (quoted commas) like the IMDB example of HuggingFace's tutorials."""
    lines = ['text,label'] + [f'"{w}, truly {w}",{s}' for w, s in
                              [('great', 'pos'), ('awful', 'neg'), ('fine', 'meh')] * (rows // 3)]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_a_text_label_csv_needs_no_task_and_no_dev_file(tmp_path, monkeypatch):
    """Issue 18's done-when: only --train-file, --model and --dataset-name."""
    train = write_text_label_csv(tmp_path / 'reviews.csv')
    monkeypatch.chdir(tmp_path)
    results = finetune_classifier.main(['--train-file', train, '--model', 'bert_6_384_12',
                                        '--dataset-name', 'all_minilm_l6_v2'])
    assert results['task'] == 'custom'
    assert results['train_samples'] == 22 and results['dev_samples'] == 2  # 10% held out
    assert set(results['dev_metrics']) == {'accuracy'}
    meta = json.load(open(tmp_path / 'out' / 'finetune' / 'export' / 'meta.json'))
    assert meta['labels'] == ['meh', 'neg', 'pos'] and meta['regression'] is False
    # the result folder answers in HuggingFace's pipeline with the label names, as the export
    transformers = pytest.importorskip('transformers')
    classify = transformers.pipeline('text-classification', model=results['model_folder'],
                                     top_k=None, device='cpu')
    sentences = ['great, truly great', 'awful, truly awful']
    hf = [{r['label']: r['score'] for r in rows} for rows in classify(sentences)]
    exported = SentenceClassifier(results['export']).predict_proba(sentences)
    for scores, probs in zip(hf, exported):
        np.testing.assert_allclose([scores[name] for name in meta['labels']], probs, atol=1e-4)


def test_task_is_read_off_the_columns_with_the_format_of_the_extension(tmp_path):
    from gluonbert.data import infer_task
    pairs = tmp_path / 'pairs.jsonl'
    pairs.write_text('\n'.join(json.dumps(dict(sentence=a, sentence2=b, label=y, id=i))
                               for i, (a, b, y) in enumerate([('a', 'b', 1), ('c', 'd', 0)])))
    task = infer_task(str(pairs))
    assert task.text_fields == ('sentence', 'sentence2') and task.labels == [0, 1]
    assert task.is_pair and task.file_format == 'jsonl'
    scores = tmp_path / 'scores.tsv'
    scores.write_text('text\tlabel\nx\t1\ny\t3.5\n')
    assert infer_task(str(scores)).is_regression  # a decimal point: real-valued targets
    ints = tmp_path / 'stars.tsv'
    ints.write_text('text\tlabel\nx\t1\ny\t5\n')
    assert infer_task(str(ints)).labels == ['1', '5']  # integers are class names
    assert infer_task(str(ints), regression=True).is_regression
    other = tmp_path / 'other.csv'
    other.write_text('review,stars\nx,1\n')
    with pytest.raises(ValueError, match=r"other.csv has columns \['review', 'stars'\]: no a "
                                         r'text column .* and no a label column'):
        infer_task(str(other))
    with pytest.raises(ValueError, match='name it .csv, .tsv or .jsonl, or pass --file-format'):
        infer_task(str(tmp_path / 'data.txt'))
    sst_as_csv = tmp_path / 'sst.csv'
    sst_as_csv.write_text('sentence,label\n"a, b",1\n')
    assert SST2.for_file(str(sst_as_csv)).read(str(sst_as_csv))[0] == ('a, b', 1)


def test_a_redirected_log_has_timestamped_lines_and_no_progress_bars(tmp_path):
    train = write_text_label_csv(tmp_path / 'x.csv')
    script = os.path.join(REPO, 'model_zoo', 'bert', 'finetune_classifier.py')
    proc = subprocess.run(
        [sys.executable, script, '--train-file', train, '--model', 'bert_2_128_2',
         '--from-scratch', '--epochs', '1', '--max-len', '5', '--log-every', '1',
         '--output-dir', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=240,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'), check=False)
    assert proc.returncode == 0, proc.stderr
    assert '\r' not in proc.stderr and '\x1b' not in proc.stderr  # no bars, no colours
    lines = proc.stderr.splitlines()
    stamp = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) \S+: ')
    assert [line for line in lines if not stamp.match(line)] == []
    assert any('eval at step' in line for line in lines)
    assert any('UserWarning: texts longer than max_seq_length=5' in line for line in lines)


def test_explicit_flags_override_a_saved_run_and_fixed_ones_are_refused(tmp_path, capsys):
    from gluonbert.train.run_record import RUN_CONFIG, parse_with_saved_run, used_by
    parser = finetune_classifier.build_parser()
    assert used_by(str(tmp_path)) is None
    saved = dict(arguments=dict(vars(parser.parse_args(['--from-scratch'])), epochs=4,
                                lr=1e-3, model='bert_2_128_2', resume=False),
                 commands=['first'])
    (tmp_path / RUN_CONFIG).write_text(json.dumps(saved))
    assert used_by(str(tmp_path)) == RUN_CONFIG
    args = parse_with_saved_run(parser, ['--resume', '--output-dir', str(tmp_path),
                                         '--epochs', '6'], ('model',))
    assert (args.epochs, args.lr, args.model, args.resume) == (6, 1e-3, 'bert_2_128_2', True)
    assert args.saved_run['commands'] == ['first']
    assert parser.get_default('epochs') == 3  # the parser is left as it was
    plain = parse_with_saved_run(parser, ['--output-dir', str(tmp_path)], ('model',))
    assert plain.saved_run is None and plain.epochs == 3  # no --resume: nothing is read
    with pytest.raises(SystemExit):
        parse_with_saved_run(parser, ['--resume', '--output-dir', str(tmp_path), '--model',
                                      'bert_12_768_12'], ('model',))
    assert (f"--model 'bert_12_768_12' conflicts with the run in {tmp_path}, which was trained "
            "with --model 'bert_2_128_2'") in capsys.readouterr().err


def test_a_pair_csv_fine_tunes_into_one_folder_gluonbert_and_hf_read_alike(tmp_path, monkeypatch):
    """Issue 18's done-when for a pair task: fine-tune, save, load the folder in gluonbert and
    in transformers.pipeline: equal probabilities (<=1e-5) under the task's label names."""
    import gluonbert
    from gluonbert.data import BERTSentenceTransform, batchify
    rows = [('a cat sits on the mat', 'a cat is sitting on a mat', 'same'),
            ('a cat sits on the mat', 'stocks fell sharply today', 'different')] * 12
    path = tmp_path / 'pairs.csv'
    path.write_text('text,text_pair,label\n' + ''.join(f'{a},{b},{y}\n' for a, b, y in rows))
    monkeypatch.chdir(tmp_path)
    results = finetune_classifier.main(['--train-file', str(path), '--model', 'bert_6_384_12',
                                        '--dataset-name', 'all_minilm_l6_v2', '--epochs', '1',
                                        '--max-len', '32', '--batch-size', '8', '--no-progress'])
    net = gluonbert.from_pretrained(results['model_folder'])
    info = net.pretrained_info
    assert info.labels == ['different', 'same']
    pairs = [('a dog runs in the park', 'a dog is running in a park'),
             ('the sky is blue', 'the market closed lower')]
    transform = BERTSentenceTransform(info.tokenizer(), 32, pair=True, pad=False)
    samples = [transform(p) for p in pairs]  # GluonNLP's order: ids, valid_length, types
    ids, types, lengths = batchify.bert_inputs()([(i, t, n) for i, n, t in samples])
    ours = mx.nd.softmax(net(ids, types, lengths)).asnumpy()
    transformers = pytest.importorskip('transformers')
    classify = transformers.pipeline('text-classification', model=results['model_folder'],
                                     top_k=None, device='cpu')
    hf = classify([{'text': a, 'text_pair': b} for a, b in pairs])
    for scores, probs in zip(hf, ours):
        by_name = {row['label']: row['score'] for row in scores}
        np.testing.assert_allclose([by_name[name] for name in info.labels], probs, atol=1e-5)


def test_an_inference_folder_is_removed_when_the_run_fails_in_it(tmp_path):
    from gluonbert.train.run_record import inference_folder
    with pytest.raises(RuntimeError, match='half-way'):
        with inference_folder(str(tmp_path)) as folder:
            open(os.path.join(folder, 'dev_metrics.json'), 'w').close()
            raise RuntimeError('failed half-way')
    assert os.listdir(tmp_path) == []
    with inference_folder(str(tmp_path)) as folder:
        assert os.path.basename(folder).startswith('inference-')
    assert os.listdir(tmp_path) == [os.path.basename(folder)]
