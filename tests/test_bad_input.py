"""Issue 19: every mistake gets one clear line, every fault loses nothing.

Each case asserts the exception type or exit code, that the message names the file, flag or
value, and what is on disk afterwards. Script cases run `main(argv)` in-process; the exit codes
of a real process are checked in a few bounded subprocess cases at the end.
"""
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from gluonbert import BERTClassifier, export_model, get_model, import_model
from gluonbert.convert.native import save_native_checkpoint
from gluonbert.data import SST2, BERTSentenceTransform, BERTTokenizer
from gluonbert.errors import (CheckpointMismatchError, DamagedFileError, UsageError, one_line,
                              run_main)
from gluonbert.train import TrainConfig, TrainingLoop
from gluonbert.train import classification as cls
from gluonbert.train.checkpoint import CheckpointManager, load_parameters_file
from gluonbert.train.loop import NonFiniteLossError, NonFiniteOutputError
from tests.conftest import TINY, random_batch, tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(REPO, 'model_zoo', 'bert')
sys.path.insert(0, ZOO)
import finetune_classifier  # noqa: E402
import finetune_squad  # noqa: E402
import pretrain  # noqa: E402
from gluonbert import cli  # noqa: E402

SENTENCES = ['a charming and affecting journey', 'bleak and desperate', 'a gorgeous film',
             'tedious and clumsy', 'witty and warm', 'dull , dull , dull']


def write_tsv(path, rows, header='sentence\tlabel'):
    """A GLUE-style TSV with a header; returns its path as str."""
    path.write_text('\n'.join([header] + rows) + '\n', encoding='utf-8')
    return str(path)


@pytest.fixture
def sst(tmp_path):
    """train.tsv / dev.tsv with six labeled sentences each, and where the run writes."""
    rows = [f'{s}\t{i % 2}' for i, s in enumerate(SENTENCES)]
    return dict(train=write_tsv(tmp_path / 'train.tsv', rows),
                dev=write_tsv(tmp_path / 'dev.tsv', rows), out=str(tmp_path / 'run'))


def classifier_argv(sst, *extra, weights=('--from-scratch',)):
    """A tiny but complete finetune_classifier.py command line."""
    return ['--task', 'sst-2', '--train-file', sst['train'], '--dev-file', sst['dev'], '--model',
            'bert_2_128_2', *weights, '--max-len', '16', '--batch-size', '4', '--epochs', '1',
            '--no-progress', '--output-dir', sst['out'], *extra]


def parse_error(main, argv, capsys):
    """Run a script's main expecting argparse's refusal -> the stderr text."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


# ---- 4. numeric flags and paths are checked at parse time, before anything is written ----

@pytest.mark.parametrize('flag, value, words', [
    ('--batch-size', '0', 'must be a whole number >= 1; got 0'),
    ('--lr', '-0.5', 'must be a number > 0; got -0.5'),
    ('--epochs', '-1', 'must be a whole number >= 1; got -1'),
    ('--lr', 'nan', "'nan' is not a finite number"),
    ('--warmup-ratio', '1.5', 'must be in [0, 1]; got 1.5'),
    ('--dropout', '1', 'must be in [0, 1); got 1'),
    ('--max-len', 'abc', "'abc' is not an integer"),
    ('--accumulate', '0', 'must be a whole number >= 1; got 0'),
    ('--seed', '-3', 'must be a whole number >= 0; got -3'),
])
def test_bad_numbers_are_refused_at_parse_time(sst, capsys, flag, value, words):
    err = parse_error(finetune_classifier.main, classifier_argv(sst, flag, value), capsys)
    assert f'argument {flag}: {words}' in err
    assert not os.path.exists(sst['out'])  # nothing built or written


def test_a_missing_train_file_is_refused_at_parse_time(sst, tmp_path, capsys):
    argv = classifier_argv(sst, '--train-file', str(tmp_path / 'nope.tsv'))
    err = parse_error(finetune_classifier.main, argv, capsys)
    assert 'argument --train-file: {}: no such file'.format(tmp_path / 'nope.tsv') in err
    assert not os.path.exists(sst['out'])


def test_a_file_given_as_data_dir_is_refused(sst, capsys):
    err = parse_error(finetune_classifier.main, classifier_argv(sst, '--data-dir', sst['dev']),
                      capsys)
    assert 'argument --data-dir: {}: a file, not a folder'.format(sst['dev']) in err


def test_an_output_dir_that_is_a_file_is_refused(sst, capsys):
    argv = classifier_argv(sst)
    argv[argv.index('--output-dir') + 1] = sst['dev']
    err = parse_error(finetune_classifier.main, argv, capsys)
    assert 'argument --output-dir: {} is a file; pass a folder'.format(sst['dev']) in err


def test_only_inference_with_a_missing_params_file_is_refused(sst, tmp_path, capsys):
    argv = classifier_argv(sst, '--only-inference', '--params', str(tmp_path / 'best.params'))
    err = parse_error(finetune_classifier.main, argv, capsys)
    assert 'argument --params: {}: no such file'.format(tmp_path / 'best.params') in err


def test_a_missing_pretrained_checkpoint_is_refused(sst, tmp_path, capsys):
    argv = classifier_argv(sst, weights=('--pretrained', str(tmp_path / 'ckpt')))
    err = parse_error(finetune_classifier.main, argv, capsys)
    assert 'argument --pretrained: {}: no such file or folder'.format(tmp_path / 'ckpt') in err


def test_squad_doc_stride_zero_is_refused(sst, capsys):
    err = parse_error(finetune_squad.main, ['--dev-file', sst['dev'], '--doc-stride', '0',
                                            '--from-scratch', '--output-dir', sst['out']], capsys)
    assert 'argument --doc-stride: must be a whole number >= 1; got 0' in err
    assert not os.path.exists(sst['out'])


@pytest.mark.parametrize('flag, value, words', [
    ('--masked-lm-prob', '2', 'must be in [0, 1]; got 2'),
    ('--max-steps', '0', 'must be a whole number >= 1; got 0'),
    ('--num-layers', '0', 'must be a whole number >= 1; got 0'),
])
def test_pretrain_bad_numbers_are_refused(sst, capsys, flag, value, words):
    err = parse_error(pretrain.main, ['--data', sst['train'], '--from-scratch', flag, value,
                                      '--output-dir', sst['out']], capsys)
    assert f'argument {flag}: {words}' in err
    assert not os.path.exists(sst['out'])


def test_pretrain_data_that_matches_nothing_is_refused_before_writing(sst, tmp_path, capsys):
    pattern = str(tmp_path / 'corpus' / '*.txt')
    err = parse_error(pretrain.main, ['--data', pattern, '--from-scratch', '--output-dir',
                                      sst['out']], capsys)
    assert f'--data {pattern}: no such file' in err
    assert not os.path.exists(sst['out'])


# ---- issue 17: random weights only on request ----

def test_no_weights_source_is_refused_naming_the_three_flags(sst, capsys):
    err = parse_error(finetune_classifier.main, classifier_argv(sst, weights=()), capsys)
    for flag in ('--dataset-name', '--pretrained', '--from-scratch'):
        assert flag in err
    assert not os.path.exists(sst['out'])


@pytest.mark.parametrize('main', [finetune_squad.main, pretrain.main])
def test_the_other_scripts_also_refuse_silent_random_weights(sst, capsys, main):
    argv = ['--dev-file', sst['dev'], '--train-file', sst['train']] if main is \
        finetune_squad.main else ['--data', sst['train']]
    err = parse_error(main, argv + ['--output-dir', sst['out']], capsys)
    assert 'no weights to start from' in err and '--from-scratch' in err


def test_from_scratch_contradicts_a_dataset_name(sst, capsys):
    argv = classifier_argv(sst, weights=('--from-scratch', '--dataset-name', 'all_minilm_l6_v2'))
    err = parse_error(finetune_classifier.main, argv, capsys)
    assert '--from-scratch contradicts --dataset-name' in err


# ---- 8. a launched worker must join its cluster ----

def test_a_worker_started_by_the_launcher_needs_comm_backend(sst, capsys, monkeypatch):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    err = parse_error(finetune_classifier.main, classifier_argv(sst), capsys)
    assert 'DMLC_ROLE=worker' in err and '--comm-backend dist_sync' in err
    assert not os.path.exists(sst['out'])


def test_the_launcher_refuses_a_zoo_command_without_comm_backend(capsys):
    code = cli.main(['launch', '--backend', 'dist_sync', '-n', '2', '--launcher', 'print', '--',
                     'python', 'model_zoo/bert/finetune_classifier.py', '--task', 'sst-2'])
    err = capsys.readouterr().err
    assert code == 2
    assert 'finetune_classifier.py with --comm-backend device (the default)' in err
    assert 'add --comm-backend dist_sync' in err


# ---- 2. empty inputs are refused before training ----

def test_an_empty_train_file_names_itself_before_training(sst, tmp_path):
    empty = write_tsv(tmp_path / 'empty.tsv', [])
    with pytest.raises(UsageError, match=f'{empty}: no samples .*no rows after the header'):
        finetune_classifier.main(classifier_argv(sst, '--train-file', empty))
    assert not os.path.exists(os.path.join(sst['out'], 'checkpoints'))


def test_an_empty_dev_file_stops_the_run_before_the_first_epoch(sst, tmp_path):
    empty = write_tsv(tmp_path / 'empty-dev.tsv', [])
    with pytest.raises(UsageError, match='empty-dev.tsv: no samples'):
        finetune_classifier.main(classifier_argv(sst, '--dev-file', empty))
    assert not os.path.exists(os.path.join(sst['out'], 'train.log'))  # nothing trained


def test_an_empty_test_file_is_refused_before_training(sst, tmp_path):
    empty = write_tsv(tmp_path / 'test.tsv', [], header='sentence')
    with pytest.raises(UsageError, match='test.tsv: no samples'):
        finetune_classifier.main(classifier_argv(sst, '--test-file', empty))
    assert not os.path.exists(os.path.join(sst['out'], 'train.log'))


def test_a_custom_task_whose_train_file_has_no_rows_is_refused(sst, tmp_path):
    empty = write_tsv(tmp_path / 'train.csv', [], header='text,label')
    with pytest.raises(UsageError, match='train.csv: no samples'):
        finetune_classifier.main(classifier_argv(sst, '--task', 'custom', '--text-columns',
                                                 'text', '--train-file', empty))


def test_a_malformed_row_names_the_file_and_line(sst, tmp_path):
    bad = write_tsv(tmp_path / 'bad.tsv', ['fine\t1', 'no label column'])
    with pytest.raises(ValueError, match='bad.tsv, line 3: expected 2'):
        finetune_classifier.main(classifier_argv(sst, '--train-file', bad))
    assert not os.path.exists(os.path.join(sst['out'], 'train.log'))


def test_squad_with_no_questions_is_refused(sst, tmp_path):
    empty = tmp_path / 'squad.json'
    empty.write_text(json.dumps({'data': []}))
    with pytest.raises(UsageError, match='squad.json: no samples'):
        finetune_squad.main(['--dev-file', str(empty), '--train-file', str(empty),
                             '--model', 'bert_2_128_2', '--from-scratch', '--no-progress',
                             '--output-dir', sst['out']])


# ---- 1. damaged parameter files name themselves ----

def truncate(path, keep=100):
    """Cut a file to its first `keep` bytes, as an interrupted copy would."""
    with open(path, 'rb') as f:
        head = f.read(keep)
    with open(path, 'wb') as f:
        f.write(head)


def test_only_inference_with_truncated_params_names_the_file(sst, tmp_path):
    net = BERTClassifier(get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                                   use_classifier=False)[0])
    net.initialize_head()
    params = str(tmp_path / 'best.params')
    net.save_parameters(params)
    truncate(params)
    with pytest.raises(DamagedFileError) as info:
        finetune_classifier.main(classifier_argv(sst, '--only-inference', '--params', params))
    assert params in str(info.value) and 'Invalid NDArray file format' in str(info.value)
    assert 'Traceback' not in str(info.value)
    assert not os.path.exists(os.path.join(sst['out'], 'export'))
    # the run failed before it had anything to write: not even --output-dir was made
    assert not os.path.exists(sst['out'])


def test_get_model_with_truncated_params_has_no_dangling_traceback(tmp_path):
    params = str(tmp_path / 'model.params')
    tiny_model().save_parameters(params)
    truncate(params)
    with pytest.raises(ValueError) as info:
        get_model('bert_2_128_2', pretrained=params)
    assert params in str(info.value) and 'Invalid NDArray file format' in str(info.value)
    assert 'Traceback' not in str(info.value)


def test_a_config_that_disagrees_with_its_weights_says_which_file_says_what(tmp_path):
    model, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                             use_classifier=False)
    folder = str(tmp_path / 'ckpt')
    save_native_checkpoint(model, vocab, folder)
    config_path = os.path.join(folder, 'gluonbert_config.json')
    config = json.load(open(config_path))
    config['hparams']['units'] = 256
    json.dump(config, open(config_path, 'w'))
    with pytest.raises(ValueError) as info:
        get_model('bert_2_128_2', pretrained=folder, use_decoder=False, use_classifier=False)
    message = str(info.value)
    assert "units: the checkpoint's configuration says 256, the model has 128" in message
    assert 'the weights (encoder.word_embed.weight) are 128' in message
    assert folder in message


def test_load_parameters_file_without_mxnets_allow_missing_hint(tmp_path):
    path = str(tmp_path / 'cls.params')
    with_pooler = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False))
    with_pooler.initialize_head()
    with_pooler.save_parameters(path)
    without = BERTClassifier(tiny_model(use_pooler=False, use_decoder=False,
                                        use_classifier=False), pooling='mean')
    without.initialize_head()
    with pytest.raises(CheckpointMismatchError) as info:
        load_parameters_file(without, path)
    assert path in str(info.value) and 'allow_missing' not in str(info.value) \
        and 'ignore_extra' not in str(info.value)


# ---- 3. checkpoints record the model; a resume into another is refused ----

def tiny_classifier(**overrides):
    """A tiny BERTClassifier on TINY (plus overrides), head initialized."""
    net = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False, **overrides))
    net.initialize_head()
    return net


def tiny_batches(num=4, batch=4, seq_len=8):
    """(epoch -> batches of (ids, types, lengths, labels)), the number of batches."""
    def batches(epoch):
        for i in range(num):
            ids, types, lengths = random_batch(batch, seq_len, lengths=[seq_len] * batch,
                                               seed=epoch * 100 + i)
            yield ids, types, lengths, mx.nd.array([j % 2 for j in range(batch)])
    return batches, num


def ce_loss(net, ids, types, lengths, labels):
    """Softmax cross-entropy of a classifier's logits."""
    return mx.gluon.loss.SoftmaxCELoss()(net(ids, types, lengths), labels)


def fit(net, out, resume=False, record=None, loss=ce_loss, evaluate=None, max_steps=None,
        **config):
    """One short TrainingLoop run into `out`; returns its state."""
    settings = dict(lr=1e-3, epochs=1, log_every=1, eval_every=2, progress=False)
    settings.update(config)
    loop = TrainingLoop(net, loss, mx.cpu(), TrainConfig(**settings), out, model_record=record)
    batches, num = tiny_batches()
    return loop.fit(batches, num, evaluate, resume=resume, max_steps=max_steps)


def test_resuming_into_another_head_count_is_refused_naming_both(tmp_path):
    out = str(tmp_path / 'run')
    fit(tiny_classifier(num_heads=2), out)
    other = tiny_classifier(num_heads=4)  # the same parameter shapes
    with pytest.raises(CheckpointMismatchError,
                       match=r"num_heads=2 in the checkpoint, 4 in this run"):
        fit(other, out, resume=True)


def test_resuming_into_another_label_set_is_refused(tmp_path):
    out = str(tmp_path / 'run')
    fit(tiny_classifier(), out, record=dict(labels=['neg', 'pos']))
    with pytest.raises(CheckpointMismatchError,
                       match=r"labels=\['neg', 'pos'\] in the checkpoint, \['no', 'yes'\]"):
        fit(tiny_classifier(), out, resume=True, record=dict(labels=['no', 'yes']))


def test_resuming_a_checkpoint_with_truncated_weights_names_the_file(tmp_path):
    out = str(tmp_path / 'run')
    fit(tiny_classifier(), out)
    latest = CheckpointManager(out).latest()
    truncate(os.path.join(latest, 'model.params'))
    with pytest.raises(DamagedFileError, match='cannot read checkpoint parameters {}'.format(
            os.path.join(latest, 'model.params'))):
        fit(tiny_classifier(), out, resume=True)


def test_a_matching_resume_still_works_and_records_the_model(tmp_path):
    out = str(tmp_path / 'run')
    fit(tiny_classifier(), out, record=dict(labels=['0', '1']), epochs=2, max_steps=2)
    state = json.load(open(os.path.join(CheckpointManager(out).latest(), 'state.json')))
    assert state['model']['config']['num_heads'] == TINY['num_heads']
    assert state['model']['labels'] == ['0', '1'] and state['model']['pooling'] == 'cls'
    resumed = fit(tiny_classifier(), out, resume=True, record=dict(labels=['0', '1']), epochs=2)
    assert resumed['step'] == 8


def test_a_checkpoint_from_before_records_still_resumes(tmp_path):
    out = str(tmp_path / 'run')
    fit(tiny_classifier(), out, epochs=2, max_steps=2)
    state_file = os.path.join(CheckpointManager(out).latest(), 'state.json')
    state = json.load(open(state_file))
    del state['model']
    json.dump(state, open(state_file, 'w'))
    assert fit(tiny_classifier(num_heads=2), out, resume=True, epochs=2)['step'] == 8


# ---- 6. only finite weights and outputs are good ----

def nan_after(step):
    """A loss that is NaN from optimizer step `step` on (counted by calls)."""
    calls = []

    def loss(net, ids, types, lengths, labels):
        calls.append(1)
        value = ce_loss(net, ids, types, lengths, labels)
        return value * float('nan') if len(calls) >= step else value
    return loss


def test_a_checkpoint_followed_by_a_nan_loss_is_not_called_good(tmp_path):
    out = str(tmp_path / 'run')
    with pytest.raises(NonFiniteLossError) as info:  # checkpoints at steps 2; NaN at step 3
        fit(tiny_classifier(), out, loss=nan_after(3))
    assert 'no checkpoint is known to be good' in str(info.value)
    assert 'step-00000002' in str(info.value) and 'last good checkpoint' not in str(info.value)


def test_a_checkpoint_followed_by_a_finite_loss_is_called_good(tmp_path):
    out = str(tmp_path / 'run')
    with pytest.raises(NonFiniteLossError) as info:  # checkpoint at 2, finite 3, NaN at 4
        fit(tiny_classifier(), out, loss=nan_after(4))
    assert 'the last good checkpoint is {}'.format(
        os.path.join(out, 'checkpoints', 'step-00000002')) in str(info.value)


def features_of(seed=0, num=6, seq_len=8):
    """Labeled classification Features with random ids."""
    ids, types, lengths = random_batch(num, seq_len, lengths=[seq_len] * num, seed=seed)
    return [cls.Feature(ids[i].asnumpy().astype('int32'), types[i].asnumpy().astype('int32'),
                        np.int32(seq_len), i % 2, i) for i in range(num)]


def test_an_evaluation_of_nan_outputs_stops_the_run_and_is_never_best(tmp_path):
    out = str(tmp_path / 'run')
    net = tiny_classifier()
    dev = features_of()

    def evaluate(n):  # weights blown up after the check before evaluation: NaN/inf logits
        n.classifier.weight.set_data(mx.nd.full(n.classifier.weight.shape, float('inf')))
        return cls.evaluate(n, SST2, dev, 4, mx.cpu(), progress=False)
    with pytest.raises(NonFiniteOutputError, match='evaluation at step 2: the outputs for 6 '
                                                   'examples hold 12 NaN or infinite values'):
        fit(net, out, evaluate=evaluate, lr=1e-9)
    assert not os.path.exists(os.path.join(out, 'best.params'))
    assert CheckpointManager(out).latest() is None


def test_the_script_with_a_huge_lr_keeps_no_nan_model_as_best(sst):
    with pytest.raises(NonFiniteLossError) as info:
        finetune_classifier.main(classifier_argv(sst, '--lr', '1e9', '--eval-every', '1'))
    assert 'last good checkpoint' not in str(info.value)
    assert not os.path.exists(os.path.join(sst['out'], 'best.params'))


# ---- 7. an imported symbol checks its inputs like BERTModel ----

@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A tiny classifier exported as a symbol -> (path prefix, the block)."""
    net = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False))
    net.initialize_head()
    prefix = str(tmp_path_factory.mktemp('export') / 'model')
    export_model(net, prefix, random_batch())
    return prefix


def test_import_model_refuses_an_id_outside_the_vocabulary(exported):
    block = import_model(exported)
    ids, types, lengths = random_batch(2, 6)
    ids[0, 0] = TINY['vocab_size']
    with pytest.raises(ValueError, match='input_ids holds 50 outside \\[0, 49\\]'):
        block(ids, types, lengths)


def test_import_model_refuses_a_zero_valid_length_also_hybridized(exported):
    block = import_model(exported, for_training=False)
    block.hybridize(static_alloc=True)
    ids, types, _ = random_batch(2, 6)
    with pytest.raises(ValueError, match='valid_length holds 0 outside \\[1, 6\\]'):
        block(ids, types, mx.nd.array([6, 0]))
    assert block(ids, types, mx.nd.array([6, 3])).shape == (2, 2)  # valid inputs still run


def test_import_model_with_truncated_params_names_the_file(exported, tmp_path):
    prefix = str(tmp_path / 'copy')
    for suffix in ('-symbol.json', '-0000.params'):
        with open(exported + suffix, 'rb') as src, open(prefix + suffix, 'wb') as dst:
            dst.write(src.read())
    truncate(prefix + '-0000.params')
    with pytest.raises(DamagedFileError, match=f'cannot read {prefix}-0000.params'):
        import_model(prefix)


# ---- 8. smaller ones ----

def test_a_half_written_checkpoint_folder_is_removed(tmp_path):
    root = tmp_path / 'run' / 'checkpoints'
    (root / '.step-00000004.abc123').mkdir(parents=True)
    (root / '.step-00000004.abc123' / 'model.params').write_bytes(b'half')
    manager = CheckpointManager(str(tmp_path / 'run'))
    assert os.listdir(manager.root) == []


def test_checkpoint_folders_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        fit(tiny_classifier(), str(tmp_path / 'run'), max_steps=2)
    finally:
        os.umask(old)
    latest = CheckpointManager(str(tmp_path / 'run')).latest()
    assert os.stat(latest).st_mode & 0o777 == 0o755


def test_the_scripts_export_folder_respects_the_umask(sst):
    old = os.umask(0o022)
    try:
        results = finetune_classifier.main(classifier_argv(sst))
    finally:
        os.umask(old)
    assert os.stat(results['export']).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(sst['out'], 'checkpoints')).st_mode & 0o777 == 0o755


def test_the_hybridized_cache_error_is_explained():
    model = tiny_model(use_decoder=False, use_classifier=False)
    model.hybridize()
    ids, types, lengths = random_batch()
    model(ids, types, lengths)
    with pytest.raises(ValueError) as info:
        model(ids, types)
    line = one_line(info.value)
    assert 'first with valid_length, then without' in line and 'Stored format' not in line


def test_the_cli_says_truncation_in_command_line_words(capsys):
    _, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False, use_classifier=False)
    transform = BERTSentenceTransform(BERTTokenizer(vocab), 8, pad=False, pair=False)
    with cli._truncation_noted('raise --max-len'):
        transform(('one two three four five six seven eight nine ten',))
    err = capsys.readouterr().err
    assert 'note: texts longer than max_seq_length=8 are being truncated' in err
    assert 'raise --max-len' in err and '.truncation.report()' not in err


# ---- 5. one line, exit codes, --debug ----

def failing(err):
    """A main(argv) that raises `err`."""
    def main(argv):
        raise err
    return main


@pytest.mark.parametrize('err, code, words', [
    (ValueError('dev.tsv, line 3: bad'), 2, 'prog: error: dev.tsv, line 3: bad'),
    (SystemExit('--monitor mcc: task reports accuracy'), 2,
     'prog: error: --monitor mcc: task reports accuracy'),
    (NonFiniteLossError('training loss became nan'), 1,
     'prog: failed: training loss became nan (rerun with --debug'),
    (KeyboardInterrupt(), 130, 'prog: interrupted; what was written is complete'),
    (ZeroDivisionError('boom'), 1, 'prog: failed: ZeroDivisionError: boom'),
])
def test_run_main_prints_one_line_and_the_exit_code(capsys, err, code, words):
    assert run_main(failing(err), [], prog='prog') == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(words)


def test_debug_flag_and_variable_show_the_traceback(monkeypatch):
    with pytest.raises(ValueError, match='bad'):
        run_main(failing(ValueError('bad')), ['--debug'], prog='prog')
    monkeypatch.setenv('GLUONBERT_DEBUG', '1')
    with pytest.raises(ValueError, match='bad'):
        run_main(failing(ValueError('bad')), [], prog='prog')


def test_an_mxnet_error_is_one_line_without_its_stack(capsys, tmp_path):
    path = tmp_path / 'x.params'
    path.write_bytes(b'garbage')
    assert run_main(lambda argv: mx.nd.load(str(path)), [], prog='prog') == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'Invalid NDArray file format' in err
    assert 'Traceback' not in err and 'ndarray.cc' not in err


@pytest.mark.parametrize('argv, words', [
    (['predict', '--model-dir', '/nonexistent/export', 'text'],
     'argument --model-dir: /nonexistent/export: no such folder'),
    (['embed', '--max-len', '0', 'text'], 'argument --max-len: must be a whole number >= 1'),
    (['quantize', '--model-dir', '.', '--calib-file', 'missing.tsv', '--output', 'o'],
     'argument --calib-file: missing.tsv: no such file'),
])
def test_cli_flags_are_checked_at_parse_time(capsys, argv, words):
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err


def test_a_cli_error_of_gluonbert_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / 'export').mkdir()
    assert cli.main(['predict', '--model-dir', str(tmp_path / 'export'), 'text']) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('gluonbert: error: ')
    assert str(tmp_path / 'export') in lines[0]


# ---- real processes: exit codes and Ctrl-C ----

def run_script(argv, timeout=120):
    """Run a zoo script in a subprocess -> CompletedProcess (text)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.pop('GLUONBERT_DEBUG', None)
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO, check=False)


def test_a_script_process_exits_2_with_one_line(sst, tmp_path):
    bad = write_tsv(tmp_path / 'bad.tsv', ['fine\t1', 'no label column'])
    done = run_script([os.path.join(ZOO, 'finetune_classifier.py'),
                       *classifier_argv(sst, '--train-file', bad)])
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith('finetune_classifier.py: error: ') and 'bad.tsv, line 3' in last
    assert 'Traceback' not in done.stderr


def test_ctrl_c_exits_130_and_leaves_a_complete_checkpoint(sst):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    argv = classifier_argv(sst, '--epochs', '200', '--eval-every', '1')
    # SIGINT as a terminal delivers it: a suite started in the background (`pytest &` from a
    # script, nohup) hands its children SIGINT ignored, and Python then keeps ignoring it
    proc = subprocess.Popen([sys.executable, os.path.join(ZOO, 'finetune_classifier.py'), *argv],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    latest = os.path.join(sst['out'], 'checkpoints', 'LATEST')
    try:
        deadline = time.time() + 120
        while not os.path.exists(latest) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert os.path.exists(latest), 'no checkpoint within 120 s'
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith('finetune_classifier.py: interrupted')
    manager = CheckpointManager(sst['out'])  # what a --resume finds
    assert manager.latest() is not None
    assert not [n for n in os.listdir(manager.root) if n.startswith('.')]


def test_a_closed_pipe_ends_a_command_quietly(tmp_path):
    """`gluonbert ... | head` closes the pipe early: exit 0, no 'failed' line."""
    script = tmp_path / 'noisy.py'
    script.write_text('import sys\nfrom gluonbert.errors import run_main\n'
                      'def main(argv):\n    for i in range(100000):\n        print(i)\n'
                      'sys.exit(run_main(main, [], prog="noisy"))\n')
    run = subprocess.run(f'{sys.executable} {script} | head -n 1', shell=True,
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert run.stdout == '0\n'
    assert 'failed' not in run.stderr and 'Traceback' not in run.stderr, run.stderr
