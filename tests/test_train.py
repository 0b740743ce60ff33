"""Training library: AdamW and the schedule against torch/HF, clipping, and the loop's guarantees
(accumulation, multiple contexts, exact resume, NaN stop, early stopping, outputs)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from gluonbert.model import BERTClassifier
from gluonbert.train import (LinearWarmupDecay, NonFiniteLossError, TrainConfig, TrainingLoop,
                             exclude_from_weight_decay)
from gluonbert.train.clipping import clip_factor, global_norm
from gluonbert.train.distributed import LocalBackend
from gluonbert.train.loop_state import LoopState
from conftest import tiny_model

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')


def run_adamw(correct_bias, steps=6):
    """Our AdamW on two parameters with a fixed gradient sequence; returns final weights."""
    rng = np.random.RandomState(0)
    weights = [rng.randn(4, 3).astype('float32'), rng.randn(3).astype('float32')]
    grads = [[rng.randn(*w.shape).astype('float32') for w in weights] for _ in range(steps)]
    params = mx.gluon.ParameterDict()
    for i, w in enumerate(weights):
        params.get(f'p{i}', shape=w.shape).initialize(mx.init.Constant(0))
        params[f'p{i}'].set_data(w)
    schedule = LinearWarmupDecay(0.1, total_steps=steps, warmup_steps=2)
    trainer = mx.gluon.Trainer(params, 'adamw', dict(learning_rate=0.1, wd=0.01, epsilon=1e-6,
                                                    lr_scheduler=schedule,
                                                    correct_bias=correct_bias),
                               update_on_kvstore=False)
    for step_grads in grads:
        with mx.autograd.record():  # d/dw sum(w * g) = g: the gradient is exactly g
            loss = mx.nd.add_n(*[(p.data() * mx.nd.array(g)).sum()
                                 for p, g in zip(params.values(), step_grads)])
        loss.backward()
        trainer.update(1)
    return weights, grads, [p.data().asnumpy() for p in params.values()]


def test_adamw_matches_torch_adamw_with_the_hf_schedule():
    start, grads, ours = run_adamw(correct_bias=True)
    tensors = [torch.tensor(w, requires_grad=True) for w in start]
    opt = torch.optim.AdamW(tensors, lr=0.1, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    sched = transformers.get_linear_schedule_with_warmup(opt, 2, len(grads))
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = torch.tensor(g)
        opt.step()
        sched.step()
    for a, b in zip(ours, tensors):
        np.testing.assert_allclose(a, b.detach().numpy(), atol=2e-6, rtol=1e-5)
    assert np.abs(ours[0] - start[0]).max() > 0.05  # it really moved


def test_adamw_without_bias_correction_is_googles_update():
    start, grads, ours = run_adamw(correct_bias=False)
    schedule = LinearWarmupDecay(0.1, total_steps=len(grads), warmup_steps=2)
    for w, i in zip(start, range(2)):
        m, v, w = np.zeros_like(w), np.zeros_like(w), w.astype('float64')
        for t, step_grads in enumerate(grads, 1):
            g = step_grads[i]
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w = w - np.float32(schedule(t)) * (m / (np.sqrt(v) + 1e-6) + 0.01 * w)
        np.testing.assert_allclose(ours[i], w, atol=1e-5, rtol=1e-5)


def test_schedule_matches_hf_linear_warmup_decay():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    hf = transformers.get_linear_schedule_with_warmup(opt, num_warmup_steps=3,
                                                      num_training_steps=10)
    ours = LinearWarmupDecay(2.0, total_steps=10, warmup_steps=3)
    for update in range(1, 12):
        assert ours(update) == pytest.approx(opt.param_groups[0]['lr'], abs=1e-12)
        opt.step()
        hf.step()
    with pytest.raises(ValueError, match='warmup_steps=11 must be in'):
        LinearWarmupDecay(1.0, 10, 11)


def test_global_norm_clipping_matches_torch():
    rng = np.random.RandomState(1)
    grads = [rng.randn(5, 4).astype('float32') * 3 for _ in range(70)]  # > one chunk
    norm = global_norm([mx.nd.array(g) for g in grads])
    tensors = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    assert norm.asscalar() == pytest.approx(float(torch_norm), rel=1e-5)
    factor = clip_factor(norm, 1.0).asscalar()
    np.testing.assert_allclose(grads[0] * factor, tensors[0].grad.numpy(), rtol=1e-5, atol=1e-7)
    assert clip_factor(norm, 1e9).asscalar() == 1.0
    assert np.isnan(clip_factor(mx.nd.array([np.inf]), 1.0).asscalar())


def test_weight_decay_skips_layer_norm_and_biases():
    model = tiny_model(use_decoder=False, use_classifier=False)
    excluded = exclude_from_weight_decay(model)
    params = model.collect_params()
    assert all(params[n].wd_mult == 0 for n in excluded)
    decayed = [n for n, p in params.items() if p.wd_mult == 1]
    assert any(n.endswith('qkv_weight') for n in decayed)
    assert any(n.endswith('position_weight') for n in decayed)
    assert not any(n.endswith(('gamma', 'beta', 'bias')) for n in decayed)


# ---- the loop, on a tiny classifier and a learnable synthetic task ----

def make_data(n=48, seq_len=8, seed=0):
    """Label = whether the first token's id is below 27 (the pooler reads position 0);
    lengths vary and padding is id 0."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(4, 50, size=(n, seq_len))
    labels = (ids[:, 0] < 27).astype('int64')
    lengths = rng.randint(4, seq_len + 1, size=n)
    for row in range(n):
        ids[row, lengths[row]:] = 0
    types = np.zeros_like(ids)
    return [a.astype('float32') for a in (ids, types, lengths, labels)]


def batches(data, batch_size, seed):
    """An epoch -> batches function with a per-epoch seeded shuffle."""
    def epoch_batches(epoch):
        order = np.random.RandomState(seed + epoch).permutation(len(data[0]))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield tuple(a[idx] for a in data)
    return epoch_batches


def classifier(dropout=0.0):
    bert = tiny_model(use_decoder=False, use_classifier=False, dropout=dropout)
    net = BERTClassifier(bert, num_classes=2, dropout=dropout)
    net.initialize_head()
    return net


CE = mx.gluon.loss.SoftmaxCrossEntropyLoss()


def ce_loss(net, ids, types, lengths, labels):
    return CE(net(ids, types, lengths), labels)


def accuracy(data):
    def evaluate(net):
        pred = net(mx.nd.array(data[0]), mx.nd.array(data[1]), mx.nd.array(data[2]))
        return {'accuracy': float((pred.argmax(axis=1).asnumpy() == data[3]).mean())}
    return evaluate


def params_of(net):
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}


def set_params(net, weights):
    """Give `net` the weights of a params_of dict (arrays or NDArrays)."""
    for name, param in net._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(weights[name]) if isinstance(weights[name], np.ndarray)
                       else weights[name])


def classifier_with(weights, dropout=0.0):
    """A tiny classifier holding `weights` (a params_of dict)."""
    net = classifier(dropout)
    set_params(net, weights)
    return net


def assert_same_params(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)


def train(net, data, batch_size, ctx=mx.cpu(), output_dir=None, evaluate=None, resume=False,
          max_steps=None, loss=ce_loss, **config):
    config = TrainConfig(**dict(dict(lr=1e-3, epochs=2, warmup_ratio=0.25, progress=False,
                                     log_every=2), **config))
    loop = TrainingLoop(net, loss, ctx, config, output_dir=output_dir)
    n_batches = -(-len(data[0]) // batch_size)
    return loop.fit(batches(data, batch_size, config.seed), n_batches, evaluate, resume,
                    max_steps)


def test_training_learns_and_writes_its_outputs(tmp_path):
    data, dev = make_data(96), make_data(48, seed=1)
    net = classifier()
    before = accuracy(dev)(net)['accuracy']
    state = train(net, data, 8, output_dir=str(tmp_path), evaluate=accuracy(dev), epochs=6,
                  lr=3e-3)
    assert state['best_metrics']['accuracy'] >= 0.9 > before
    losses = [h['loss'] for h in state['history'] if 'loss' in h]
    assert losses[-1] < 0.5 * losses[0]
    for name in ('train.log', 'history.json', 'curves.png', 'best.params', 'best.json'):
        assert os.path.getsize(tmp_path / name) > 0
    assert json.load(open(tmp_path / 'best.json'))['accuracy'] == state['best']
    assert open(tmp_path / 'curves.png', 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_accumulation_equals_one_big_batch():
    data = make_data(32)
    big = classifier()
    small = classifier_with(params_of(big))
    train(big, data, 8)
    train(small, data, 4, accumulate=2)
    assert_same_params(params_of(big), params_of(small))


def test_two_contexts_equal_one():
    data = make_data(32)
    one = classifier()
    two = classifier_with(params_of(one))
    train(one, data, 8)
    two.collect_params().reset_ctx([mx.cpu(0), mx.cpu(1)])
    train(two, data, 8, ctx=[mx.cpu(0), mx.cpu(1)])
    assert_same_params(params_of(one), params_of(two))


def test_three_contexts_with_batches_smaller_than_the_context_count():
    """9 samples in batches of 4: the last batch (1 sample) leaves two contexts idle."""
    data = make_data(9)
    one = classifier()
    three = classifier_with(params_of(one))
    ctxs = [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    train(one, data, 4)
    three.collect_params().reset_ctx(ctxs)
    train(three, data, 4, ctx=ctxs)
    assert_same_params(params_of(one), params_of(three))


def test_interrupted_and_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path):
    data = make_data(40)
    reference = classifier(dropout=0.1)
    initial = params_of(reference)
    first = classifier_with(initial, dropout=0.1)
    train(reference, data, 8, epochs=3, eval_every=2)
    # the first process dies after step 7; its last checkpoint is from step 6 (mid-epoch 2)
    train(first, data, 8, epochs=3, eval_every=2, output_dir=str(tmp_path), max_steps=7)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['LATEST', 'step-00000006']
    resumed = classifier(dropout=0.1)  # a new process: fresh weights, restored from disk
    train(resumed, data, 8, epochs=3, eval_every=2, output_dir=str(tmp_path), resume=True)
    assert_same_params(params_of(reference), params_of(resumed))
    assert np.abs(params_of(reference)['classifier.weight'] - initial['classifier.weight']).max() \
        > 1e-3
    other = BERTClassifier(tiny_model(use_pooler=False, use_decoder=False, use_classifier=False),
                           num_classes=2, pooling='mean')  # no pooler: the checkpoint has one
    other.initialize_head()
    with pytest.raises(ValueError, match=r"cannot resume from .*step-\d+: it was written by "
                                         r"another model \(pooling='cls' in the checkpoint, "
                                         r"'mean' in this run"):
        train(other, data, 8, epochs=3, output_dir=str(tmp_path), resume=True)


def test_checkpoint_state_json_keeps_its_format(tmp_path):
    """LoopState writes state.json with the keys (in the order) checkpoints always had, so older
    checkpoints resume and newer ones stay readable by older code."""
    net, data = classifier(), make_data(16)
    train(net, data, 8, epochs=1, output_dir=str(tmp_path), evaluate=accuracy(data))
    state = json.load(open(tmp_path / 'checkpoints' / 'step-00000002' / 'state.json'))
    assert list(state) == ['epoch', 'batch', 'step', 'best', 'best_metrics', 'bad_evals',
                           'history', 'stopped', 'total_steps', 'host_rng', 'model']
    assert (state['epoch'], state['batch'], state['step'], state['total_steps']) == (1, 0, 2, 2)
    assert state['history'][-1] == {'step': 2, 'eval': state['best_metrics']}
    assert LoopState.from_dict(state).to_dict() == {k: state[k] for k in list(state)[:9]}


class RecordingBackend(LocalBackend):
    """One process, as LocalBackend, recording what the loop asks of it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def make_trainer(self, params, optimizer):
        self.calls.append('make_trainer')
        return super().make_trainer(params, optimizer)

    def step(self, trainer, gradient_factor):
        self.calls.append('step')
        super().step(trainer, gradient_factor)

    def reduce_loss(self, loss_sum):
        self.calls.append('reduce_loss')
        return super().reduce_loss(loss_sum)

    def release(self, params):
        self.calls.append('release')


def test_the_loop_trains_through_the_backend_it_is_given():
    data = make_data(40)
    reference = classifier()
    given = classifier_with(params_of(reference))
    state = train(reference, data, 8, epochs=2)  # the default: a LocalBackend of its own
    backend = RecordingBackend()
    config = TrainConfig(lr=1e-3, epochs=2, warmup_ratio=0.25, progress=False, log_every=2)
    loop = TrainingLoop(given, ce_loss, mx.cpu(), config, backend=backend)
    assert loop.backend is backend
    loop.fit(batches(data, 8, config.seed), 5)
    read_outs = sum('loss' in entry for entry in state['history'])
    assert state['step'] == 10 and read_outs == 6  # every 2 steps and at each epoch's end
    assert backend.calls[0] == 'make_trainer' and backend.calls[-1] == 'release'
    assert backend.calls.count('step') == 10 and backend.calls.count('reduce_loss') == read_outs
    assert_same_params(params_of(reference), params_of(given), atol=0)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = make_data(48)
    calls = []

    def poisoned(net, *batch):
        calls.append(1)
        loss = ce_loss(net, *batch)
        return loss * float('nan') if len(calls) > 7 else loss

    net = classifier()
    reference = classifier_with(params_of(net))
    with pytest.raises(NonFiniteLossError, match=r'loss became nan by step 8.*step-00000006'):
        train(net, data, 4, output_dir=str(tmp_path), loss=poisoned, eval_every=3, log_every=4)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['LATEST', 'step-00000006']
    # the NaN step was skipped: the weights equal a clean run stopped after step 7
    train(reference, data, 4, max_steps=7)
    assert_same_params(params_of(reference), params_of(net))


def test_nan_metric_is_never_the_best(tmp_path):
    scores = iter([float('nan'), 0.6, 0.8])
    state = train(classifier(), make_data(24), 8, output_dir=str(tmp_path),
                  evaluate=lambda net: {'pearsonr': next(scores)}, eval_every=1, epochs=1)
    assert state['best'] == 0.8 and state['bad_evals'] == 0


def test_runs_do_not_share_log_files_or_gradient_modes(tmp_path):
    net = classifier()
    train(net, make_data(16), 8, output_dir=str(tmp_path / 'a'), accumulate=2, epochs=1)
    assert {p.grad_req for p in net.collect_params().values()} == {'add'}
    train(net, make_data(16), 8, output_dir=str(tmp_path / 'b'), epochs=1)
    assert {p.grad_req for p in net.collect_params().values()} == {'write'}
    log_a = open(tmp_path / 'a' / 'train.log').read()
    log_b = open(tmp_path / 'b' / 'train.log').read()
    assert log_a.count('step 1 epoch 1') == 1 and 'step 2 epoch 1' not in log_a  # a: 1 step
    assert 'step 2 epoch 1' in log_b  # and run b did not write into run a's log
    import logging
    assert not [h for h in logging.getLogger('gluonbert.train').handlers
                if isinstance(h, logging.FileHandler)]


def test_early_stopping_keeps_the_best(tmp_path):
    data = make_data(32)
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])

    def evaluate(net):
        return {'f1': next(scores)}

    state = train(classifier(), data, 8, output_dir=str(tmp_path), evaluate=evaluate,
                  eval_every=1, early_stop=2, epochs=5)
    assert state['stopped'].startswith('early stop: 2 evaluations without a better f1')
    assert state['step'] == 4 and state['best'] == 0.7
    assert json.load(open(tmp_path / 'best.json')) == {'step': 2, 'f1': 0.7}


def test_best_params_and_best_json_are_replaced_together(tmp_path):
    from gluonbert.train.checkpoint import save_best
    save_best(str(tmp_path), classifier(), {'step': 2, 'f1': 0.7})
    before = (tmp_path / 'best.params').read_bytes()
    better = classifier()
    better.classifier.weight.set_data(better.classifier.weight.data() + 1)
    with pytest.raises(TypeError, match='not JSON serializable'):
        save_best(str(tmp_path), better, {'step': 4, 'f1': object()})  # fails after the weights
    # neither file moved: the weights and the metrics that made them best still match
    assert json.load(open(tmp_path / 'best.json')) == {'step': 2, 'f1': 0.7}
    assert (tmp_path / 'best.params').read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['best.json', 'best.params']


def test_class_weighted_loss_scales_each_sample_by_its_class_weight():
    from gluonbert.train.losses import WeightedSoftmaxCELoss, balanced_class_weights
    logits = mx.nd.array([[2.0, 0.5], [0.1, 0.3], [1.0, -1.0]])
    labels = mx.nd.array([0, 1, 1])
    plain = torch.nn.functional.cross_entropy(torch.tensor(logits.asnumpy()),
                                              torch.tensor([0, 1, 1]), reduction='none').numpy()
    weights = balanced_class_weights([0, 1, 1], 2)
    assert weights == [1.5, 0.75]
    loss = WeightedSoftmaxCELoss(weights)
    np.testing.assert_allclose(loss(logits, labels).asnumpy(), plain * [1.5, 0.75, 0.75],
                               rtol=1e-5)
    unweighted = WeightedSoftmaxCELoss()
    np.testing.assert_allclose(unweighted(logits, labels).asnumpy(), plain, rtol=1e-5)
    with pytest.raises(ValueError, match='class 2 never occurs'):
        balanced_class_weights([0, 1], 3)


# ---- the weight average (--ema-decay) ----

def test_weight_average_follows_its_recurrence_and_swaps_back():
    from gluonbert.train.averaging import WeightAverage
    net = classifier()
    start = params_of(net)
    average = WeightAverage(net, decay=0.9)
    expected = {k: v.astype('float64') for k, v in start.items()}
    rng = np.random.RandomState(3)
    for t in range(1, 31):  # d = min(0.9, (1 + t) / (10 + t)) still warms up here
        weights = {k: rng.randn(*v.shape).astype('float32') for k, v in start.items()}
        set_params(net, weights)
        average.update(t)
        d = min(0.9, (1.0 + t) / (10.0 + t))
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}
    assert average.rate(1) == pytest.approx(2 / 11) and average.rate(1000) == 0.9
    with average.applied():
        assert_same_params(params_of(net), expected, atol=1e-5)
    assert_same_params(params_of(net), weights, atol=0)  # the trained weights are back
    average.copy_to_net()
    assert_same_params(params_of(net), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r'ema_decay=1.0 must be in \(0, 1\)'):
        TrainConfig(ema_decay=1.0)


def test_weight_average_load_refuses_a_foreign_or_damaged_file(tmp_path):
    from gluonbert.train.averaging import WeightAverage
    net = classifier()
    average = WeightAverage(net, decay=0.9)
    assert not average.load(str(tmp_path))  # none saved: it restarts from the weights
    average.save(str(tmp_path))
    with open(tmp_path / 'average.params', 'rb') as f:
        good = f.read()
    assert WeightAverage(classifier(), decay=0.9).load(str(tmp_path))
    wider = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False, hidden_size=48),
                           num_classes=2)
    wider.initialize_head()
    with pytest.raises(ValueError, match=r'the weight average of .* has shape \(.*\), the model'):
        WeightAverage(wider, decay=0.9).load(str(tmp_path))
    saved = mx.nd.load(str(tmp_path / 'average.params'))
    mx.nd.save(str(tmp_path / 'average.params'), dict(saved, extra=mx.nd.zeros(1)))
    with pytest.raises(ValueError, match=r"has parameters \['extra'\] that this model has not"):
        average.load(str(tmp_path))
    with open(tmp_path / 'average.params', 'wb') as f:
        f.write(good[:len(good) // 2])
    with pytest.raises(ValueError, match='average.params is damaged'):
        average.load(str(tmp_path))


def recorded_evaluations(data, seen):
    """accuracy(data) that also records the weights it was evaluated with."""
    score = accuracy(data)

    def evaluate(net):
        seen.append(params_of(net))
        return score(net)
    return evaluate


def test_loop_averages_every_update_and_leaves_training_untouched(tmp_path):
    """With ema_decay the loop trains exactly as without it; it evaluates the trained weights
    (raw_accuracy) and then the average of the weights after every update (accuracy), keeps the
    average as best.params and leaves it in the net."""
    data, dev = make_data(40), make_data(24, seed=1)
    initial = params_of(classifier(dropout=0.1))
    trajectory = [initial]  # the weights after 0, 1, ..., 10 updates of the plain run
    for steps in range(1, 11):
        net = classifier_with(initial, dropout=0.1)
        train(net, data, 8, max_steps=steps)
        trajectory.append(params_of(net))
    expected = {k: v.astype('float64') for k, v in initial.items()}
    for t, weights in enumerate(trajectory[1:], 1):
        d = min(0.8, (1.0 + t) / (10.0 + t))
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}

    seen, net = [], classifier_with(initial, dropout=0.1)
    state = train(net, data, 8, ema_decay=0.8, output_dir=str(tmp_path),
                  evaluate=recorded_evaluations(dev, seen))  # 2 epochs of 5 steps
    assert len(seen) == 4  # at the end of each epoch: the trained weights, then the average
    assert_same_params(seen[2], trajectory[10], atol=0)  # training is unchanged, bitwise
    assert_same_params(seen[3], expected, atol=1e-5)
    assert_same_params(params_of(net), expected, atol=1e-5)  # fit leaves the average
    assert np.abs(expected['classifier.weight'] - trajectory[10]['classifier.weight']).max() > 1e-4
    last = state['history'][-1]['eval']
    assert list(last) == ['accuracy', 'raw_accuracy']
    trained = classifier_with(trajectory[10], dropout=0.1)
    assert last['raw_accuracy'] == accuracy(dev)(trained)['accuracy']
    best = json.load(open(tmp_path / 'best.json'))
    saved = classifier(dropout=0.1)
    saved.load_parameters(str(tmp_path / 'best.params'))
    assert_same_params(params_of(saved), seen[1 + 2 * (best['step'] == 10)])
    assert os.path.isfile(tmp_path / 'checkpoints' / 'step-00000010' / 'average.params')


def test_interrupted_run_with_an_average_resumes_it_exactly(tmp_path, caplog):
    data = make_data(40)
    initial = params_of(classifier(dropout=0.1))
    reference, first, resumed = (classifier_with(initial, dropout=0.1) for _ in range(3))
    train(reference, data, 8, epochs=3, eval_every=2, ema_decay=0.7)
    train(first, data, 8, epochs=3, eval_every=2, ema_decay=0.7, output_dir=str(tmp_path),
          max_steps=7)
    train(resumed, data, 8, epochs=3, eval_every=2, ema_decay=0.7, output_dir=str(tmp_path),
          resume=True)
    assert_same_params(params_of(reference), params_of(resumed))
    assert 'average.params' in os.listdir(tmp_path / 'checkpoints' / 'step-00000015')
    train(classifier_with(initial, dropout=0.1), data, 8, epochs=3, eval_every=2,
          output_dir=str(tmp_path), resume=True)  # resumed without an average: said, not silent
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert any('has a weight average, dropped: this run has no ema_decay' in w for w in warnings)
    # a plain run's checkpoint resumed with an average: the average starts from the restored
    # step-6 weights, so after update 7 it is d * w6 + (1 - d) * w7
    plain, interrupted = str(tmp_path / 'plain'), classifier_with(initial, dropout=0.1)
    train(interrupted, data, 8, epochs=3, eval_every=2, output_dir=plain, max_steps=7)
    w6 = classifier(dropout=0.1)
    w6.load_parameters(os.path.join(plain, 'checkpoints', 'step-00000006', 'model.params'))
    caplog.clear()
    averaged = classifier_with(initial, dropout=0.1)
    train(averaged, data, 8, epochs=3, eval_every=2, ema_decay=0.7, output_dir=plain,
          resume=True, max_steps=7)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert any('step-00000006 has no weight average: it starts again from its weights' in w
               for w in warnings)
    d, w7 = min(0.7, 8 / 17), params_of(interrupted)
    assert_same_params(params_of(averaged), {k: d * v + (1 - d) * w7[k]
                                             for k, v in params_of(w6).items()}, atol=1e-6)


def test_metrics_log_keeps_one_line_per_step_after_a_resume(tmp_path):
    """A resumed run writes the steps after its checkpoint again: the log drops them first."""
    from gluonbert.train.metrics_log import MetricsLog, read_metrics
    log = MetricsLog(str(tmp_path))
    for step in (1, 2, 3, 4):
        log.append(step, 'train', dict(loss=1.0 / step))
    log.keep_until(2)  # resumed from the checkpoint at step 2
    log.append(3, 'train', dict(loss=0.3))
    assert [(m['step'], m['value']) for m in read_metrics(str(tmp_path))] == \
        [(1, 1.0), (2, 0.5), (3, 0.3)]
