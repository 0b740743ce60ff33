"""Multi-worker training on real engines, on loopback: MXNet's parameter-server kvstores and
Horovod (gloo) end with the parameters of one worker with the whole batch; the launcher stops
every process it started when one dies, on Ctrl-C and at its timeout; sharding and the
launcher's commands for several hosts."""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

import dist_worker
from gluonbert import launcher
from gluonbert.data import SST2, TextDataset
from gluonbert.train import TrainConfig, TrainingLoop, distributed
from gluonbert.train import classification as cls

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, 'scripts', 'launch.py')
WORKER = os.path.join(REPO, 'tests', 'dist_worker.py')
HAS_HOROVOD = importlib.util.find_spec('horovod') is not None


def launch(backend, command, num_workers=2, timeout=150, extra=()):
    """Run scripts/launch.py to completion -> CompletedProcess (stdout+stderr in .stdout)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    argv = [sys.executable, LAUNCH, '--backend', backend, '-n', str(num_workers), '--timeout',
            str(timeout), *extra, '--', *command]
    return subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout + 30,
                          check=False)


def started_pids(output):
    """{process name: pid} from the launcher's 'started ...' lines."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'launch: started (\w+(?: \d+)?) \(pid (\d+)\)', output)}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---- equivalence: W workers x batch B == 1 worker x batch W*B ----

@pytest.fixture(scope='module')
def reference():
    """One process, global batch 8, the same data order: params and logged history."""
    net, state = dist_worker.train('device', global_batch=8)
    return dist_worker.params_of(net), state['history']


def run_two_workers(backend, tmp_path, contexts=1):
    result = launch(backend, [sys.executable, WORKER, 'train', '--backend', backend,
                              '--global-batch', '8', '--contexts', str(contexts), '--out',
                              str(tmp_path)])
    assert result.returncode == 0, result.stdout[-3000:]
    params = [dict(np.load(tmp_path / f'params-rank{r}.npz')) for r in (0, 1)]
    histories = [json.load(open(tmp_path / f'history-rank{r}.json')) for r in (0, 1)]
    return params, histories, result.stdout


def assert_equivalent(reference, params, histories):
    ref_params, ref_history = reference
    initial = dist_worker.params_of(dist_worker.classifier())
    for name, value in ref_params.items():
        np.testing.assert_array_equal(params[0][name], params[1][name], err_msg=name)
        np.testing.assert_allclose(params[0][name], value, atol=1e-5, rtol=0, err_msg=name)
    assert np.abs(ref_params['classifier.weight'] - initial['classifier.weight']).max() > 1e-3
    assert histories[0] == histories[1]  # losses and metrics are reduced: all workers agree
    assert len(histories[0]) == len(ref_history) and len(ref_history) >= 8
    for ours, theirs in zip(histories[0], ref_history):
        assert ours['step'] == theirs['step']
        if 'loss' in theirs:  # the global mean loss, not rank 0's share
            assert ours['loss'] == pytest.approx(theirs['loss'], abs=1e-5)
        else:
            assert ours['eval'] == pytest.approx(theirs['eval'], abs=1e-6)


@pytest.mark.parametrize('backend, contexts', [('dist_sync', 1), ('dist_sync_device', 2)])
def test_kvstore_two_workers_equal_one_worker_with_twice_the_batch(backend, contexts, reference,
                                                                   tmp_path):
    """35 samples in global batches of 8: the last one (3) splits 2 + 1, so the loss must be
    divided by the global count; clipping is on (max norm 1) and acts on the summed gradient.
    dist_sync_device runs 2 contexts per worker (reduced locally, then across workers)."""
    params, histories, output = run_two_workers(backend, tmp_path, contexts)
    assert_equivalent(reference, params, histories)
    log = open(tmp_path / 'run' / 'train.log').read()  # rank 0 alone wrote the run's files
    assert f'2 workers ({backend}, rank 0); 5 batches per worker per epoch' in log
    assert log.count('step 2 epoch 1 loss') == 1
    assert sorted(os.listdir(tmp_path / 'run')) == ['best.json', 'best.params', 'checkpoints',
                                                    'curves.png', 'history.json',
                                                    'metrics.jsonl', 'train.log']
    assert set(started_pids(output)) == {'scheduler', 'server 0', 'worker 0', 'worker 1'}
    assert not any(alive(pid) for pid in started_pids(output).values())


def test_a_stopped_dist_sync_run_resumes_from_rank_0s_checkpoint(reference, tmp_path):
    """The first cluster stops after step 7 (last checkpoint: step 6, written by rank 0 only);
    a new cluster resumes from it on every worker and ends where the uninterrupted run does."""
    command = [sys.executable, WORKER, 'train', '--backend', 'dist_sync', '--out',
               str(tmp_path)]
    first = launch('dist_sync', command + ['--max-steps', '7'])
    assert first.returncode == 0, first.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / 'run' / 'checkpoints')) == ['LATEST', 'step-00000006']
    resumed = launch('dist_sync', command + ['--resume'])
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert 'resumed from' in open(tmp_path / 'run' / 'train.log').read()
    params = [dict(np.load(tmp_path / f'params-rank{r}.npz')) for r in (0, 1)]
    for name, value in reference[0].items():
        np.testing.assert_array_equal(params[0][name], params[1][name], err_msg=name)
        np.testing.assert_allclose(params[0][name], value, atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.skipif(not HAS_HOROVOD, reason='horovod is not installed: ' +
                    distributed.HOROVOD_INSTALL)
def test_horovod_two_ranks_equal_one_worker_with_twice_the_batch(reference, tmp_path):
    params, histories, output = run_two_workers('horovod', tmp_path)
    assert_equivalent(reference, params, histories)
    assert '2 workers (horovod, rank 0)' in open(tmp_path / 'run' / 'train.log').read()
    assert set(started_pids(output)) == {'worker 0', 'worker 1'}


def test_dist_async_trains_with_the_optimizer_on_the_server(tmp_path):
    """No equivalence (updates are asynchronous): both workers finish, the weights moved and
    are finite, the servers ran gluonbert's AdamW (unpickled there), rank 0 wrote the log."""
    result = launch('dist_async', [sys.executable, WORKER, 'train', '--backend', 'dist_async',
                                   '--no-clip', '--out', str(tmp_path)])
    assert result.returncode == 0, result.stdout[-3000:]
    initial = dist_worker.params_of(dist_worker.classifier())
    for rank in (0, 1):
        params = dict(np.load(tmp_path / f'params-rank{rank}.npz'))
        assert all(np.isfinite(v).all() for v in params.values())
        assert np.abs(params['classifier.weight'] - initial['classifier.weight']).max() > 1e-3
    log = open(tmp_path / 'run' / 'train.log').read()
    assert '2 workers (dist_async, rank 0)' in log and 'lr -' not in log


@pytest.mark.parametrize('backend', ['dist_sync'] + (['horovod'] if HAS_HOROVOD else []))
def test_back_to_back_allreduces_never_see_another_rounds_values(backend, tmp_path):
    """No host sync between calls and one worker lagging: a later push on the same key must not
    overtake an earlier pull (MXNet orders kvstore ops only through the arrays they touch)."""
    result = launch(backend, [sys.executable, WORKER, 'allreduce', '--backend', backend,
                              '--out', str(tmp_path)], timeout=100)
    assert result.returncode == 0, result.stdout[-3000:]
    expected = [200.0 * i + 1 for i in range(60)]
    for rank in (0, 1):
        assert json.load(open(tmp_path / f'allreduce-rank{rank}.json')) == expected


class _AsyncWorker(distributed.AsyncKVStoreBackend):
    """A dist_async worker's behaviour, without joining a cluster (no kvstore is made)."""

    def __init__(self):  # no super().__init__(): it would join a cluster
        self.name, self.rank, self.num_workers, self.is_root = 'dist_async', 0, 2, True


def test_dist_async_refuses_clipping_and_early_stopping():
    net = dist_worker.classifier()
    with pytest.raises(ValueError, match='cannot clip the gradient norm: set max_grad_norm=None'):
        TrainingLoop(net, dist_worker.ce_loss, mx.cpu(), TrainConfig(), backend=_AsyncWorker())
    with pytest.raises(ValueError, match='early stopping needs all workers to agree'):
        TrainingLoop(net, dist_worker.ce_loss, mx.cpu(),
                     TrainConfig(max_grad_norm=None, early_stop=2), backend=_AsyncWorker())


def test_dist_async_behaviour_lives_in_its_backend():
    """What the loop does differently under dist_async, asked of the backend object."""
    worker = _AsyncWorker()
    assert worker.updates_per_step == 2 and worker.step_samples(5, mx.cpu()) == (5, 10)
    assert worker.evaluates_here and not worker.can_checkpoint
    worker.is_root = False
    assert not worker.evaluates_here
    with pytest.raises(ValueError, match='keeps the optimizer states on the servers'):
        worker.check_resume()
    with pytest.raises(RuntimeError, match='cannot all-reduce'):
        worker.allreduce(mx.nd.ones(1))
    with pytest.raises(ValueError, match='mixed precision needs the loop.s own update'):
        worker.check_loop_config(TrainConfig(max_grad_norm=None, dtype='bfloat16'))
    local = distributed.LocalBackend()
    assert local.updates_per_step == 1 and local.step_samples(5, mx.cpu()) == (5, 5)
    assert local.evaluates_here and local.can_checkpoint
    local.check_resume()


def test_a_distributed_backend_outside_a_cluster_says_how_to_start_one(monkeypatch):
    for name in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match=r'DMLC_ROLE, DMLC_PS_ROOT_URI.* are not set.*'
                                           r'scripts/launch.py --backend dist_sync'):
        distributed.KVStoreBackend('dist_sync')


# ---- the launcher stops everything ----

def start_hanging_cluster(tmp_path, timeout=120):
    """A dist_sync cluster whose 2 workers all-reduce forever; returns (Popen, log path) once
    both workers joined."""
    log = tmp_path / 'launch.log'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, LAUNCH, '--backend', 'dist_sync', '-n', '2',
                             '--timeout', str(timeout), '--', sys.executable, WORKER, 'hang',
                             '--backend', 'dist_sync', '--out', str(tmp_path)],
                            cwd=REPO, env=env, stdout=open(log, 'w'), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not all((tmp_path / f'ready-rank{r}').exists() for r in (0, 1)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail('the cluster did not come up:\n' + log.read_text()[-3000:])
        time.sleep(0.2)
    return proc, log


def wait_for(proc, seconds):
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_killing_a_worker_stops_the_cluster_and_names_it(tmp_path):
    proc, log = start_hanging_cluster(tmp_path)
    pids = started_pids(log.read_text())
    assert set(pids) == {'scheduler', 'server 0', 'worker 0', 'worker 1'}
    killed_at = time.monotonic()
    os.kill(pids['worker 1'], signal.SIGKILL)
    code = wait_for(proc, 30)
    assert time.monotonic() - killed_at < 15
    assert code == 128 + signal.SIGKILL
    assert 'launch: worker 1 (pid {}) was killed by SIGKILL; stopping the other 3 processes'\
        .format(pids['worker 1']) in log.read_text()
    assert [name for name, pid in pids.items() if alive(pid)] == []


def test_ctrl_c_stops_every_process(tmp_path):
    proc, log = start_hanging_cluster(tmp_path)
    pids = started_pids(log.read_text())
    proc.send_signal(signal.SIGINT)
    assert wait_for(proc, 30) == 130
    assert 'launch: received SIGINT; stopping 4 processes' in log.read_text()
    assert [name for name, pid in pids.items() if alive(pid)] == []


def test_a_failing_worker_command_is_reported_with_its_exit_code():
    result = launch('dist_sync', [sys.executable, '-c', 'import sys; sys.exit(3)'], timeout=60)
    assert result.returncode == 3
    assert re.search(r'launch: worker \d \(pid \d+\) exited with code 3; stopping the other',
                     result.stdout)
    assert not any(alive(pid) for pid in started_pids(result.stdout).values())


def test_the_timeout_stops_the_cluster():
    result = launch('dist_sync', ['sleep', '60'], timeout=4)
    assert result.returncode == launcher.EXIT_TIMEOUT
    assert 'launch: timeout after 4 s; stopping 4 processes' in result.stdout
    assert not any(alive(pid) for pid in started_pids(result.stdout).values())


# ---- pieces: shards, cluster environment, commands for several hosts ----

def test_shard_batches_gives_every_worker_the_same_count_and_covers_the_epoch():
    def epoch_batches(epoch):
        return iter([f'e{epoch}b{i}' for i in range(5)])
    shards = [distributed.shard_batches(epoch_batches, 5, rank, 2) for rank in (0, 1)]
    assert [per_epoch for _, per_epoch in shards] == [3, 3]
    assert list(shards[0][0](1)) == ['e1b0', 'e1b2', 'e1b4']
    assert list(shards[1][0](1)) == ['e1b1', 'e1b3', 'e1b0']  # the last round is completed
    single, per_epoch = distributed.shard_batches(epoch_batches, 5, 0, 1)
    assert per_epoch == 5 and list(single(0)) == list(epoch_batches(0))


def test_classification_batches_are_the_bucket_samplers_shards():
    from gluonbert import get_model
    from gluonbert.data import BERTTokenizer
    _, vocab = get_model('bert_2_128_2', pretrained=False, use_decoder=False, use_classifier=False)
    texts = TextDataset([(' '.join(['word'] * (1 + i % 9)), i % 2) for i in range(37)])
    features, _ = cls.make_features(SST2, texts, BERTTokenizer(vocab), 16, progress=False)
    whole, per_epoch = cls.training_batches(SST2, features, 4, seed=3)
    shards = [cls.training_batches(SST2, features, 4, seed=3, num_shards=3, shard_index=r)
              for r in range(3)]
    assert {n for _, n in shards} == {-(-per_epoch // 3)}
    seen = sorted(tuple(map(tuple, b[0].asnumpy())) for fn, _ in shards for b in fn(1))
    assert {s for s in seen} == {tuple(map(tuple, b[0].asnumpy())) for b in whole(1)}
    assert len(seen) == 3 * shards[0][1]  # equal counts: the last round reuses first batches
    with pytest.raises(ValueError, match=r'shard_index=3 must be in \[0, num_shards=3\)'):
        cls.training_batches(SST2, features, 4, num_shards=3, shard_index=3)


def test_local_cluster_environment_is_loopback_and_drops_port(monkeypatch):
    monkeypatch.setenv('PORT', '8080')
    specs = launcher.kvstore_cluster(['python', 'train.py'], num_workers=2, num_servers=1)
    assert [s.name for s in specs] == ['scheduler', 'server 0', 'worker 0', 'worker 1']
    for spec in specs:
        env = launcher.child_environment(spec.env)
        assert 'PORT' not in env
        assert env['DMLC_PS_ROOT_URI'] == env['DMLC_NODE_HOST'] == '127.0.0.1'
        assert env['DMLC_INTERFACE'] == 'lo' and env['DMLC_NUM_WORKER'] == '2'
    assert [s.env['DMLC_ROLE'] for s in specs] == ['scheduler', 'server', 'worker', 'worker']
    assert specs[2].argv == ['python', 'train.py'] and specs[2].is_worker
    assert not specs[0].is_worker and specs[0].argv[0] == sys.executable


def test_several_hosts_get_per_host_commands(tmp_path, capsys):
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('# two machines\nnode-a slots=2\nnode-b:2\n')
    assert launcher.parse_hosts(hostfile=str(hostfile)) == [('node-a', 2), ('node-b', 2)]
    assert launcher.main(['--backend', 'dist_sync', '-n', '4', '--hostfile', str(hostfile),
                          '--launcher', 'print', '--port', '9099', '--', 'python',
                          'train.py', '--comm-backend', 'dist_sync']) == 0
    out = capsys.readouterr().out
    block_a, block_b = out.split('# on node-b: ')
    assert block_a.startswith('# on node-a: scheduler, server 0, worker 0, worker 1')
    assert block_b.startswith('server 1, worker 2, worker 3')
    assert block_a.count('DMLC_ROLE=worker') == 2 and block_b.count('DMLC_ROLE=worker') == 2
    assert out.count('DMLC_PS_ROOT_PORT=9099 DMLC_PS_ROOT_URI=node-a') == 7
    assert 'DMLC_NODE_HOST=node-b' in block_b and 'DMLC_NUM_SERVER=2' in block_b
    assert "python train.py --comm-backend dist_sync &" in block_b
    spec = launcher.kvstore_cluster(['python', 't.py'], 1, 1, [('node-a', 1)])[2]
    ssh = launcher.ssh_spec(spec, '/work dir')
    assert ssh.argv[:5] == ['ssh', '-tt', '-o', 'BatchMode=yes', 'node-a']
    assert ssh.argv[5].startswith("cd '/work dir' && exec env ") and \
        ssh.argv[5].endswith(' python t.py')
    from gluonbert.cli import main as cli_main
    assert cli_main(['launch', '--backend', 'horovod', '-n', '4', '-H', 'a:2,b:2',
                     '--launcher', 'print', '--', 'python', 't.py']) == 0
    assert capsys.readouterr().out == 'horovodrun --gloo -np 4 -H a:2,b:2 python t.py\n'
    with pytest.raises(ValueError, match='5 workers but the hosts offer 4 slots'):
        launcher.place_workers([('node-a', 2), ('node-b', 2)], 5)
    assert launcher.horovodrun_command(['python', 't.py'], 4, [('a', 2), ('b', 2)], 'eth0') == [
        'horovodrun', '--gloo', '-np', '4', '-H', 'a:2,b:2', '--network-interface', 'eth0',
        'python', 't.py']


# ---- the zoo script on two workers ----

@pytest.mark.slow
def test_finetune_classifier_on_two_dist_sync_workers(tmp_path):
    out = tmp_path / 'run'
    script = os.path.join(REPO, 'model_zoo', 'bert', 'finetune_classifier.py')
    result = launch('dist_sync', [
        sys.executable, script, '--task', 'sst-2', '--data-dir', os.path.join(REPO, 'data',
                                                                               'sst2'),
        '--model', 'bert_2_128_2', '--from-scratch', '--max-train-samples', '96', '--batch-size',
        '8', '--epochs', '1', '--dropout', '0.0', '--max-len', '32', '--lr', '1e-3',
        '--no-progress',
        '--log-every', '2', '--comm-backend', 'dist_sync', '--output-dir', str(out)], timeout=400)
    assert result.returncode == 0, result.stdout[-3000:]
    saved = json.load(open(out / 'dev_metrics.json'))
    assert saved['workers'] == 2 and saved['comm_backend'] == 'dist_sync'
    assert saved['dev_samples'] == 872 and 0 < saved['dev_metrics']['accuracy'] < 1
    log = open(out / 'train.log').read()
    per_worker = re.search(r'2 workers \(dist_sync, rank 0\); (\d+) batches per worker', log)
    assert per_worker and saved['steps'] == int(per_worker.group(1)) >= 6  # 96 / (8 x 2)
    assert log.count('step 2 epoch 1 loss') == 1
    assert 'global batch 16 = 8 per context x 1 context(s) x 2 worker(s)' in result.stdout
    for name in ('best.params', 'export/model-symbol.json', 'curves.png'):
        assert os.path.getsize(out / name) > 0


@pytest.mark.slow
def test_pretrain_on_two_dist_sync_workers_does_max_steps_each_with_identical_weights(tmp_path):
    """3 steps of 2 accumulated micro-batches per worker: the stream is cut into 12 batches and
    sharded, every worker steps exactly --max-steps times and ends with the same parameters;
    rank 0 alone writes the metrics, checkpoints and export."""
    sentences = [text.strip() for text, _ in SST2.read(os.path.join(REPO, 'data', 'sst2',
                                                                    'train.tsv'))][:200]
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text(''.join('\n'.join(sentences[i:i + 10]) + '\n\n'
                              for i in range(0, len(sentences), 10)), encoding='utf-8')
    out = tmp_path / 'run'
    result = launch('dist_sync', [
        sys.executable, WORKER, 'pretrain', '--backend', 'dist_sync', '--out', str(tmp_path),
        '--', '--data', str(corpus), '--model', 'bert_2_128_2', '--from-scratch', '--num-layers',
        '1', '--max-length', '64', '--max-seq-length', '32', '--max-predictions-per-seq', '4',
        '--batch-size', '8', '--accumulate', '2', '--max-steps', '3', '--eval-every', '2',
        '--log-every', '1', '--held-out-fraction', '4', '--lr', '1e-3', '--no-progress',
        '--output-dir', str(out)], timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    saved = json.load(open(out / 'pretrain_metrics.json'))
    assert saved['steps'] == 3 and saved['workers'] == 2 and saved['comm_backend'] == 'dist_sync'
    assert saved['held_out']['mlm_loss'] < saved['held_out_before']['mlm_loss']  # it trained
    params = [dict(np.load(tmp_path / f'params-rank{r}.npz')) for r in (0, 1)]
    assert params[0].keys() == params[1].keys() and 'decoder.transform.weight' in params[0]
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name], params[1][name], err_msg=name)
    log = open(out / 'train.log').read()
    assert '2 workers (dist_sync, rank 0); 6 batches per worker per epoch' in log
    assert [h['step'] for h in json.load(open(out / 'history.json')) if 'loss' in h] == [1, 2, 3]
    assert 'global batch 32 = 8 per context x 1 context(s) x 2 worker(s) x 2 accumulated' in \
        result.stdout
    for name in ('best.params', 'model/model.params', 'export/model-symbol.json'):
        assert os.path.getsize(out / name) > 0, name
