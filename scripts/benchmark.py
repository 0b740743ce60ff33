"""gluonbert against HF transformers and GluonNLP 0.10, measured in the same run on one machine.

For each model the script builds gluonbert's BERTModel (BERT-base with seeded random weights;
the MiniLM shape with the real all-MiniLM-L6-v2 weights when installed) and gives the very same
weights to HF transformers (BertModel, sdpa attention) and to GluonNLP 0.10. No speed without
the same answer: before anything is timed every variant's output is compared with gluonbert's;
an fp32 variant that disagrees (sequence output max |diff| > 1e-3) stops the run, an int8 one
(pooled output cosine < 0.97) is refused, reported and not timed, and the script exits 1.
Then it reports, medians of --repeats after --warmup runs, each repeat running every variant
once in turn (round-robin, so machine noise hits all alike):

  * inference at each --shapes (batch x seq_len): gluonbert fp32 (hybridized, static), gluonbert
    int8 (gluonbert.quantization, calibrated on 4 batches of the shape), HF torch, GluonNLP, and
    with --levers gluonbert fp32 + optimize_for(MKLDNN);
  * one fine-tuning step (forward + backward + optimizer update, batch 8 x seq 128, dropout 0.1,
    2-class head on the pooled output);
  * peak resident memory of each framework and mode, each in a fresh process;
  * achieved GFLOP/s against this machine's fp32 GEMM peak (a large mx.nd.dot, same run).

    .venv/bin/python scripts/benchmark.py --json out/benchmark.json
    .venv/bin/python scripts/benchmark.py --models bert_2_128_2 --shapes 2x16 --repeats 1

OMP_NUM_THREADS, if unset, is set to the number of cores before MXNet or torch is imported:
without it MXNet runs single-threaded (1.7x slower on BERT here).
"""
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SCRIPT = os.path.abspath(__file__)
sys.path.insert(0, os.path.dirname(os.path.dirname(SCRIPT)))

DEFAULT_MODELS = ('bert_12_768_12', 'bert_6_384_12')
DEFAULT_SHAPES = ('1x128', '8x128', '32x128', '8x384')
PRETRAINED = {'bert_6_384_12': 'all_minilm_l6_v2'}  # real weights, used when installed
HEADS = dict(use_pooler=True, use_decoder=False, use_classifier=False)
TRAIN_SHAPE = (8, 128)
FP32_ATOL = 1e-3  # max |diff| of the sequence output between fp32 implementations
INT8_MIN_COSINE = 0.97  # pooled-output cosine, int8 vs fp32; min/max-calibrated int8 on the
# real MiniLM gives 0.980-0.989 and costs 0.46 points of SST-2 accuracy (scripts/int8_accuracy.py)
CALIB_BATCHES = 4
PROBE_ITERATIONS = 3

OURS, INT8, LEVER = 'gluonbert', 'gluonbert int8', 'gluonbert fp32 + optimize_for(MKLDNN)'
HF, NLP = 'HF torch', 'GluonNLP'
PEERS = (HF, NLP)
SHORT = {HF: 'HF', NLP: 'GluonNLP'}  # in ratios: '1.12x HF'
LOOSE = {INT8: dict(atol=None, min_cosine=INT8_MIN_COSINE)}  # int8's agreement limits
# gluonbert infer: get_model(..., for_training=False); gluonbert-grads: the default, which
# allocates a gradient buffer per parameter as MXNet does at initialization
PROBES = (('gluonbert', 'infer'), ('gluonbert', 'train'), ('gluonbert-grads', 'infer'),
          ('gluonbert-int8', 'infer'),
          ('hf', 'infer'), ('hf', 'train'), ('gluonnlp', 'infer'), ('gluonnlp', 'train'))


class AgreementError(RuntimeError):
    """A variant's answer differs from gluonbert's fp32 one, so it is not timed."""


def parse_args(argv=None):
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help='registered gluonbert model names (default: %(default)s)')
    parser.add_argument('--shapes', nargs='+', default=list(DEFAULT_SHAPES),
                        help='inference shapes BATCHxSEQ_LEN (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=9, help='timed runs per variant (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs per variant first')
    parser.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory probes')
    parser.add_argument('--no-train', action='store_true', help='skip the fine-tuning step')
    parser.add_argument('--levers', action='store_true',
                        help='also time gluonbert fp32 + optimize_for(MKLDNN)')
    parser.add_argument('--threads', type=int,
                        help='OMP_NUM_THREADS and torch threads (default: $OMP_NUM_THREADS, '
                             'else the number of cores)')
    parser.add_argument('--memory-probe', nargs=3, metavar=('FRAMEWORK', 'MODE', 'MODEL'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--probe-config', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.shapes = [parse_shape(text) for item in args.shapes for text in item.split(',') if text]
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def parse_shape(text):
    """'8x128' -> (8, 128)."""
    try:
        batch, seq_len = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError('a shape is BATCHxSEQ_LEN, e.g. 8x128; got {!r}'
                                         .format(text)) from None
    return batch, seq_len


def configure_threads(threads=None):
    """Set OMP_NUM_THREADS before MXNet and torch load -> (thread count, how it was chosen)."""
    if threads:
        os.environ['OMP_NUM_THREADS'] = str(threads)
        how = 'set by --threads'
    elif os.environ.get('OMP_NUM_THREADS'):
        how = 'from the environment'
    else:
        os.environ['OMP_NUM_THREADS'] = str(os.cpu_count())
        how = ('was unset: set to the number of cores, as MXNet runs single-threaded without '
               'it')
    if 'mxnet' in sys.modules:
        how += ' (MXNet was already imported and keeps its own setting)'
    return int(os.environ['OMP_NUM_THREADS']), how


def flops(config, seq_len):
    """Forward FLOPs of one sequence: 2 per multiply-add of every matmul (dense layers, attention
    scores and context, the pooler); embeddings, softmax, LayerNorm and GELU are not counted.

    BERT-base at seq_len 128: 12 * 128 * (2 * 7,077,888 + 4 * 128 * 768) + 2 * 768^2 = 22.35e9.
    """
    units, layers = config['units'], config['num_layers']
    dense = 4 * units * units + 2 * units * config['hidden_size']  # qkv, out_proj, ffn_1, ffn_2
    attention = 4 * seq_len * units  # per token: q.K^T and weights.V, 2 * seq_len * units each
    return layers * seq_len * (2 * dense + attention) + 2 * units * units


# ---------------------------------------------------------------- models and their runners

def randomize(net, seed):
    """Seeded random weights for every parameter: N(0, 0.02) as BERT initialises its matrices,
    and (unlike a plain initializer) for biases and LayerNorm too, gammas around 1, so the
    agreement check covers every tensor."""
    rng = np.random.RandomState(seed)
    for name, param in sorted(net.collect_params().items()):
        mean = 1.0 if name.endswith('gamma') else 0.0
        param.set_data(rng.normal(mean, 0.02, size=param.shape).astype('float32'))


def build_gluonbert(name, pretrained=True, seed=0, weights=True, for_training=True):
    """(BERTModel with pooler, vocab, weights label): the real embedded weights when `pretrained`
    and the shape has some installed, else seeded random ones (`weights=False`: left as built).
    for_training=False: no gradient buffers (get_model's inference mode)."""
    import gluonbert  # pylint: disable=import-outside-toplevel
    dataset = PRETRAINED.get(name) if pretrained else None
    if dataset:
        try:
            net, vocab = gluonbert.get_model(name, dataset_name=dataset, pretrained=True,
                                             for_training=for_training, **HEADS)
            return net, vocab, 'pretrained {}'.format(dataset)
        except OSError as err:  # StoreError: the package with the weights is not installed
            print('note: {} has no real weights here ({}); using random ones'.format(name, err),
                  file=sys.stderr)
    net, vocab = gluonbert.get_model(name, pretrained=False, for_training=for_training, **HEADS)
    if weights:
        randomize(net, seed)
    return net, vocab, 'random (seed {})'.format(seed)


def make_inputs(vocab_size, batch, seq_len, seed):
    """Random (input_ids, token_types, valid_length) int32 numpy arrays: 2 segments, no padding."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, vocab_size, size=(batch, seq_len)).astype(np.int32)
    types = np.zeros_like(ids)
    types[:, seq_len // 2:] = 1
    return ids, types, np.full((batch,), seq_len, dtype=np.int32)


def mx_inputs(inputs, length_dtype='int32'):
    """numpy inputs -> MXNet NDArrays (ids and types int32; GluonNLP wants float lengths)."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    ids, types, lengths = inputs
    return (mx.nd.array(ids, dtype='int32'), mx.nd.array(types, dtype='int32'),
            mx.nd.array(lengths, dtype=length_dtype))


def hf_inputs(inputs):
    """numpy inputs -> transformers keyword arguments, the padding mask from valid_length."""
    import torch  # pylint: disable=import-outside-toplevel
    ids, types, lengths = inputs
    mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    return dict(input_ids=torch.from_numpy(ids.astype(np.int64)),
                token_type_ids=torch.from_numpy(types.astype(np.int64)),
                attention_mask=torch.from_numpy(mask.astype(np.int64)))


def mx_runner(net, arrays):
    """A synchronous forward pass of an MXNet block; run(fetch=True) returns (sequence, pooled)."""
    def run(fetch=False):
        outputs = net(*arrays)
        for output in outputs:
            output.wait_to_read()
        return [output.asnumpy() for output in outputs[:2]] if fetch else None
    return run


def hf_runner(model, feeds):
    """A forward pass of a transformers BertModel; run(fetch=True) returns (sequence, pooled)."""
    import torch  # pylint: disable=import-outside-toplevel

    def run(fetch=False):
        with torch.inference_mode():
            output = model(**feeds)
        return [output.last_hidden_state.numpy(), output.pooler_output.numpy()] if fetch else None
    return run


def hf_model(block, vocab, folder, class_name):
    """Write `block` as a HuggingFace folder with gluonbert's converter, load it as
    transformers.`class_name` with sdpa attention."""
    import transformers  # pylint: disable=import-outside-toplevel
    from gluonbert.convert.hf import save_hf_checkpoint  # pylint: disable=import-outside-toplevel
    path = os.path.join(folder, class_name)
    save_hf_checkpoint(block, vocab, path)
    return getattr(transformers, class_name).from_pretrained(
        path, attn_implementation='sdpa', local_files_only=True)


def hf_from_config(config, class_name):
    """A transformers model with its own random weights from a BertConfig dict (memory probes)."""
    import transformers  # pylint: disable=import-outside-toplevel
    extra = dict(num_labels=2) if class_name != 'BertModel' else {}
    return getattr(transformers, class_name)(
        transformers.BertConfig(attn_implementation='sdpa', **dict(config, **extra)))


def gluonnlp_model(config, vocab, arrays=None):
    """GluonNLP 0.10's BERTModel with pooler: get_model('bert_12_768_12') with the shape of
    `config` (gluonbert hyperparameters); `arrays` (gluonbert names) become its weights."""
    import gluonnlp  # pylint: disable=import-outside-toplevel
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    from gluonbert.convert import assign_parameters  # pylint: disable=import-outside-toplevel
    from gluonbert.convert.gluonnlp import to_gluonnlp_params  # pylint: disable=C0415
    shape = {key: config[key] for key in ('num_layers', 'units', 'hidden_size', 'num_heads',
                                          'max_length', 'dropout', 'activation',
                                          'layer_norm_eps', 'token_type_vocab_size')}
    net, _ = gluonnlp.model.get_model(
        'bert_12_768_12', dataset_name=None, vocab=vocab, pretrained=False,
        hparam_allow_override=True, embed_size=config['units'], **HEADS, **shape)
    net.initialize(mx.init.Normal(0.02))
    net(*mx_inputs(make_inputs(len(vocab), 1, 4, 0), 'float32'))  # finish deferred shapes
    if arrays is not None:
        assign_parameters(net, to_gluonnlp_params(arrays, config['num_heads']), source='gluonbert')
    return net


def gluonbert_arrays(block):
    """gluonbert canonical parameter name -> numpy array."""
    from gluonbert.convert.layout import block_to_canonical  # pylint: disable=C0415
    return block_to_canonical(block)[0]


def optimized_model(net, folder, arrays):
    """The lever: gluonbert's exported graph re-imported and given to optimize_for(MKLDNN)."""
    from gluonbert import export_model, import_model  # pylint: disable=import-outside-toplevel
    prefix = os.path.join(folder, 'exported', 'model')
    if not os.path.isfile(prefix + '-symbol.json'):
        export_model(net, prefix, arrays, portable=False)  # as optimize_for_cpu: kernels kept
    block = import_model(prefix)
    block.optimize_for(*arrays, backend='MKLDNN', static_alloc=True, static_shape=True)
    return block


def int8_model(net, vocab_size, batch, seq_len):
    """gluonbert.quantization.quantize on CALIB_BATCHES random batches of the timed shape."""
    from gluonbert.quantization import quantize  # pylint: disable=import-outside-toplevel
    calib = [mx_inputs(make_inputs(vocab_size, batch, seq_len, 100 + i))
             for i in range(CALIB_BATCHES)]
    qnet = quantize(net, calib)
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


# ---------------------------------------------------------------- agreement and timing

def compare(expected, got):
    """Max |diff| of the sequence outputs and the lowest cosine similarity of the pooled ones."""
    diff = float(np.max(np.abs(expected[0] - got[0])))
    a, b = expected[1], got[1]
    cosine = float(np.min(np.sum(a * b, axis=-1) /
                          (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))))
    return dict(max_abs_diff=diff, min_cosine=cosine)


def check_agreement(variant, expected, got, atol=FP32_ATOL, min_cosine=None):
    """Compare (sequence, pooled) outputs with gluonbert's -> their differences; AgreementError
    when the sequence output's max |diff| exceeds `atol` or a pooled output's cosine similarity
    is below `min_cosine` (either may be None): no speed without the same answer."""
    if [np.shape(a) for a in expected] != [np.shape(a) for a in got]:
        raise AgreementError('{}: output shapes {} differ from gluonbert\'s {}'.format(
            variant, [np.shape(a) for a in got], [np.shape(a) for a in expected]))
    result = compare(expected, got)
    diff, cosine = result['max_abs_diff'], result['min_cosine']
    if (atol is not None and not diff <= atol) or \
            (min_cosine is not None and not cosine >= min_cosine):
        raise AgreementError(
            '{} disagrees with gluonbert fp32: sequence output max |diff| {:.3g} (limit {}), '
            'pooled output min cosine {:.6f} (limit {}); not timed: no speed without the same '
            'answer'.format(variant, diff, atol, cosine, min_cosine))
    return dict(result, atol=atol, cosine_limit=min_cosine, passed=True)


def agreement(runners):
    """Check every variant against gluonbert fp32 -> variant -> differences.

    An fp32 variant that disagrees raises AgreementError (a broken conversion must not be
    timed). An int8 one is held to the looser LOOSE limits; if it misses them it is recorded as
    refused and removed from `runners`, so it is not timed but the other variants still are.
    """
    expected = runners[OURS](fetch=True)
    checks = {}
    for name in [n for n in runners if n != OURS]:
        got = runners[name](fetch=True)
        try:
            checks[name] = check_agreement(name, expected, got, **LOOSE.get(name, {}))
        except AgreementError as err:
            if name not in LOOSE:
                raise
            checks[name] = dict(compare(expected, got), passed=False, refused=str(err))
            del runners[name]
            print('REFUSED: {}'.format(err), file=sys.stderr)
    return checks


def time_round_robin(runners, repeats, warmup):
    """name -> callable  ->  name -> seconds per run; each repeat runs every variant once in
    turn, starting one further along each time so no variant always follows the same one."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    names = list(runners)
    times = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summarize(times, batch, work, peak_gflops):
    """Per-variant medians: seconds, sequences/s, GFLOP/s and % of the GEMM peak, with each
    variant's speed ratio to the peers (>1: faster than that peer)."""
    out = {}
    for name, runs in times.items():
        seconds = statistics.median(runs)
        gflops = work / seconds / 1e9
        out[name] = dict(seconds=seconds, seq_per_s=batch / seconds, gflops=gflops,
                         pct_gemm_peak=100 * gflops / peak_gflops, times=runs)
    for name, row in out.items():
        row['vs'] = {peer: out[peer]['seconds'] / row['seconds'] for peer in PEERS
                     if peer in out and peer != name}
    return out


def gemm_peak(n=2048, repeats=7):
    """This machine's fp32 GEMM GFLOP/s: median of `repeats` n x n mx.nd.dot after a warmup."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    a, b = mx.nd.random.normal(shape=(n, n)), mx.nd.random.normal(shape=(n, n))
    mx.nd.dot(a, b).wait_to_read()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        mx.nd.dot(a, b).wait_to_read()
        runs.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(runs) / 1e9


# ---------------------------------------------------------------- inference

def variant_runners(models, inputs, levers, int8=None):
    """Every variant's runner on one input batch: gluonbert fp32, int8 (given the quantized
    model), the lever (with `levers`), then the peers."""
    net, arrays = models['net'], mx_inputs(inputs)
    runners = {OURS: mx_runner(net, arrays)}
    if int8 is not None:
        runners[INT8] = mx_runner(int8, arrays)
    if levers:
        runners[LEVER] = mx_runner(optimized_model(net, models['folder'], arrays), arrays)
    runners[HF] = hf_runner(models['hf'], hf_inputs(inputs))
    runners[NLP] = mx_runner(models['nlp'], mx_inputs(inputs, 'float32'))
    return runners


def preflight(models, shape, levers):
    """Check the fp32 variants of a model at one shape before anything is timed (fail fast)."""
    inputs = make_inputs(models['config']['vocab_size'], *shape, seed=99)
    agreement(variant_runners(models, inputs, levers))


def bench_inference(models, args, peak_gflops):
    """Agreement, then round-robin timings, at every shape -> (agreement, timings) by shape."""
    checks, timings = {}, {}
    for index, (batch, seq_len) in enumerate(args.shapes):
        key = '{}x{}'.format(batch, seq_len)
        inputs = make_inputs(models['config']['vocab_size'], batch, seq_len, seed=index)
        int8 = int8_model(models['net'], models['config']['vocab_size'], batch, seq_len)
        runners = variant_runners(models, inputs, args.levers, int8)
        checks[key] = agreement(runners)
        times = time_round_robin(runners, args.repeats, args.warmup)
        timings[key] = summarize(times, batch, batch * flops(models['config'], seq_len),
                                 peak_gflops)
        print('  {}: {}'.format(key, ', '.join('{} {:.4g} s'.format(name, row['seconds'])
                                               for name, row in timings[key].items())),
              file=sys.stderr)
    return checks, timings


# ---------------------------------------------------------------- fine-tuning step

def mx_train_step(block, trainer, arrays, labels):
    """One synchronous MXNet step: forward, softmax cross-entropy, backward, optimizer update."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        with mx.autograd.record():
            loss = loss_fn(block(*arrays), labels).mean()
        loss.backward()
        trainer.step(1)
        mx.nd.waitall()
    return step


def hf_train_step(model, feeds, labels):
    """One torch step of a BertForSequenceClassification: cross-entropy, backward, AdamW."""
    import torch  # pylint: disable=import-outside-toplevel
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-6, weight_decay=0.01)
    model.train()

    def step():
        loss = torch.nn.functional.cross_entropy(model(**feeds).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def gluonbert_classifier(net):
    """gluonbert's BERTClassifier (2 classes, dropout 0.1) on `net`, hybridized, with AdamW."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    from gluonbert import BERTClassifier  # pylint: disable=import-outside-toplevel
    from gluonbert.train import AdamW  # pylint: disable=import-outside-toplevel
    classifier = BERTClassifier(net, num_classes=2, dropout=0.1)
    classifier.initialize_head()
    classifier.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(classifier.collect_params(),
                               AdamW(learning_rate=2e-5, epsilon=1e-6, wd=0.01),
                               update_on_kvstore=False)
    return classifier, trainer


def gluonnlp_classifier(nlp_net, head=None):
    """GluonNLP's BERTClassifier (2 classes, dropout 0.1) with mx Trainer 'adam'; `head` (a
    Dense) gives its output layer the same weights."""
    import gluonnlp  # pylint: disable=import-outside-toplevel
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    classifier = gluonnlp.model.BERTClassifier(nlp_net, num_classes=2, dropout=0.1)
    classifier.classifier.initialize(mx.init.Normal(0.02))
    classifier(*mx_inputs(make_inputs(10, 1, 4, 0), 'float32'))  # finish deferred shapes
    if head is not None:
        classifier.classifier[-1].weight.set_data(head.weight.data())
        classifier.classifier[-1].bias.set_data(head.bias.data())
    classifier.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(classifier.collect_params(), 'adam',
                               dict(learning_rate=2e-5, epsilon=1e-6, wd=0.01),
                               update_on_kvstore=False)
    return classifier, trainer


def train_batch(vocab_size, seed=0):
    """(numpy inputs, int labels) of the fine-tuning shape."""
    inputs = make_inputs(vocab_size, *TRAIN_SHAPE, seed=seed)
    return inputs, np.random.RandomState(seed).randint(0, 2, size=TRAIN_SHAPE[0])


def bench_train(models, args, peak_gflops):
    """Round-robin timings of one fine-tuning step of each framework, from the same weights."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
    inputs, labels = train_batch(models['config']['vocab_size'])
    classifier, trainer = gluonbert_classifier(models['net'])
    hf = hf_model(classifier, models['vocab'], models['folder'], 'BertForSequenceClassification')
    nlp, nlp_trainer = gluonnlp_classifier(models['nlp'], classifier.classifier)
    steps = {OURS: mx_train_step(classifier, trainer, mx_inputs(inputs), mx.nd.array(labels)),
             HF: hf_train_step(hf, hf_inputs(inputs), torch.from_numpy(labels)),
             NLP: mx_train_step(nlp, nlp_trainer, mx_inputs(inputs, 'float32'),
                                mx.nd.array(labels))}
    times = time_round_robin(steps, args.repeats, args.warmup)
    batch, seq_len = TRAIN_SHAPE
    # forward + backward is ~3x the forward's FLOPs (two matmuls back for each one forward)
    return summarize(times, batch, 3 * batch * flops(models['config'], seq_len), peak_gflops)


# ---------------------------------------------------------------- peak memory

def probe_hf(mode, config, inputs, labels):
    """A memory probe's HF model (its own random weights) as one-iteration callable."""
    import torch  # pylint: disable=import-outside-toplevel
    setup_torch(int(os.environ['OMP_NUM_THREADS']))
    if mode == 'train':
        model = hf_from_config(config['hf'], 'BertForSequenceClassification')
        return hf_train_step(model, hf_inputs(inputs), torch.from_numpy(labels))
    return hf_runner(hf_from_config(config['hf'], 'BertModel').eval(), hf_inputs(inputs))


def probe_mxnet(framework, mode, name, config, inputs, labels):
    """A memory probe's gluonbert, gluonbert int8 or GluonNLP model as one-iteration callable."""
    import mxnet as mx  # pylint: disable=import-outside-toplevel
    from gluonbert.data import BERTVocab, bundled_vocab_path  # pylint: disable=C0415
    length_dtype = 'float32' if framework == 'gluonnlp' else 'int32'
    if framework == 'gluonnlp':
        net = gluonnlp_model(config['hparams'], BERTVocab.from_file(bundled_vocab_path()))
    else:  # inference probes use get_model's inference mode, except gluonbert-grads
        net, _, _ = build_gluonbert(name, pretrained=False, weights=False, for_training=(
            mode == 'train' or framework == 'gluonbert-grads'))
    if mode == 'train':
        block, trainer = (gluonnlp_classifier if framework == 'gluonnlp'
                          else gluonbert_classifier)(net)
        return mx_train_step(block, trainer, mx_inputs(inputs, length_dtype),
                             mx.nd.array(labels))
    net.hybridize(static_alloc=True, static_shape=True)
    if framework == 'gluonbert-int8':
        net = int8_model(net, config['hparams']['vocab_size'], *TRAIN_SHAPE)
    return mx_runner(net, mx_inputs(inputs, length_dtype))


def peak_rss_mb():
    """This process's peak resident memory in MB.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child
    of this (large) benchmark process would report the parent's size instead of its own.
    """
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(framework, mode, name, config_json):
    """Child process: build one model, run it a few times, print its peak RSS in MB."""
    config = json.loads(config_json)
    inputs, labels = train_batch(config['hparams']['vocab_size'])
    run = (probe_hf(mode, config, inputs, labels) if framework == 'hf' else
           probe_mxnet(framework, mode, name, config, inputs, labels))
    for _ in range(PROBE_ITERATIONS):
        run()
    print('peak_rss_mb {:.1f}'.format(peak_rss_mb()))


def probe_memory(name, config, train):
    """Peak RSS (MB) of each (framework, mode), each measured in a fresh process."""
    out = {}
    for framework, mode in PROBES:
        if mode == 'train' and not train:
            continue
        cmd = [sys.executable, SCRIPT, '--memory-probe', framework, mode, name,
               '--probe-config', json.dumps(config)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = done.stdout.split()
        if done.returncode != 0 or 'peak_rss_mb' not in lines:
            raise RuntimeError('memory probe {} {} {} failed (exit {}):\n{}'.format(
                framework, mode, name, done.returncode, done.stderr[-3000:]))
        out.setdefault(framework, {})[mode] = float(lines[lines.index('peak_rss_mb') + 1])
        print('  memory {} {}: {} MB'.format(framework, mode, out[framework][mode]),
              file=sys.stderr)
    return out


# ---------------------------------------------------------------- one model, the whole run

def build_models(name, folder):
    """gluonbert's model and its peers, all holding the same weights; files go to `folder`."""
    from gluonbert.convert.hf import hparams_to_config  # pylint: disable=import-outside-toplevel
    print('{}: building gluonbert, HF and GluonNLP models'.format(name), file=sys.stderr)
    os.makedirs(folder)
    net, vocab, weights = build_gluonbert(name)
    net.hybridize(static_alloc=True, static_shape=True)
    config = dict(net.config)
    nlp = gluonnlp_model(config, vocab, gluonbert_arrays(net))
    nlp.hybridize(static_alloc=True, static_shape=True)
    return dict(name=name, net=net, vocab=vocab, weights=weights, config=config, folder=folder,
                nlp=nlp,
                hf=hf_model(net, vocab, folder, 'BertModel').eval(),
                hf_config=hparams_to_config(config, 'BertModel', vocab[vocab.padding_token]))


def bench_model(models, args, peak_gflops):
    """Everything measured for one model -> a JSON-ready dict."""
    config = models['config']
    result = dict(weights=models['weights'], config=config,
                  gflop_per_sequence={str(s): flops(config, s) / 1e9
                                      for s in sorted({s for _, s in args.shapes})})
    result['agreement'], result['inference'] = bench_inference(models, args, peak_gflops)
    if not args.no_train:
        result['train'] = bench_train(models, args, peak_gflops)
    if not args.no_memory:
        result['memory'] = probe_memory(models['name'],
                                        dict(hparams=config, hf=models['hf_config']),
                                        not args.no_train)
    return result


# ---------------------------------------------------------------- report

def machine_info(threads, how):
    """CPU model, cores, SIMD flags, thread setting and load of this machine."""
    cpu, flags = platform.processor(), set()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    cpu = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
    except OSError:
        pass
    simd = {'avx2': 'avx2' in flags, 'avx512': 'avx512f' in flags,
            'vnni': bool({'avx512_vnni', 'avx_vnni'} & flags), 'amx': 'amx_tile' in flags}
    return dict(cpu=cpu, cores=os.cpu_count(), omp_num_threads=threads, threads_note=how,
                simd=simd, load_average=os.getloadavg())


def versions():
    """Versions of the frameworks compared."""
    import gluonnlp  # pylint: disable=import-outside-toplevel
    import mxnet  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    import gluonbert  # pylint: disable=import-outside-toplevel
    from gluonbert import kernels  # pylint: disable=import-outside-toplevel
    return dict(python=platform.python_version(), gluonbert=gluonbert.__version__,
                gluonbert_kernels='loaded' if kernels.load() else 'off (MXNet LayerNorm)',
                mxnet=mxnet.__version__, torch=torch.__version__,
                transformers=transformers.__version__, gluonnlp=gluonnlp.__version__,
                numpy=np.__version__)


def setup_torch(threads):
    """torch on `threads` threads; transformers without progress bars and warnings."""
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def table(header, rows):
    """A markdown table."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows])


def ratios(row):
    """'1.12x HF · 2.03x GluonNLP' for a timing row."""
    return ' · '.join('{:.2f}x {}'.format(value, SHORT[peer]) for peer, value in row['vs'].items())


def speed_cell(row, unit='batch'):
    """One variant's timing as a table cell."""
    text = '{:.4g} s/{} · {:.1f}/s'.format(row['seconds'], unit, row['seq_per_s'])
    return text + (' · ' + ratios(row) if row['vs'] else '')


def cells(result, fmt, refused='refused'):
    """Rows of shape + one cell per variant (`fmt(timing row)`, or `refused`)."""
    variants = [OURS] + list(next(iter(result['agreement'].values())))
    rows = [[shape] + [fmt(row[v]) if v in row else refused for v in variants]
            for shape, row in result['inference'].items()]
    return ['shape'] + variants, rows


def agreement_cell(check):
    """'1.2e-06 · 1.00000', with REFUSED when the variant missed its limits."""
    text = '{:.2g} · {:.5f}'.format(check['max_abs_diff'], check['min_cosine'])
    return text if check['passed'] else text + ' REFUSED (limit {})'.format(INT8_MIN_COSINE)


def inference_section(result):
    """Speed, GFLOP/s and agreement tables of one model."""
    variants = list(next(iter(result['agreement'].values())))
    checks = [[shape] + [agreement_cell(c[v]) for v in variants]
              for shape, c in result['agreement'].items()]
    return ['Inference: median s/batch · sequences/s · speed vs each peer (1.12x HF: 1.12 '
            'times as many sequences/s as HF torch)', '',
            table(*cells(result, speed_cell, 'refused: disagrees (below)')), '',
            'Achieved GFLOP/s (% of the fp32 GEMM peak; int8 counts the same operations):', '',
            table(*cells(result, lambda row: '{:.1f} ({:.0f}%)'.format(
                row['gflops'], row['pct_gemm_peak']))), '',
            'Agreement with gluonbert fp32 (sequence output max |diff| · pooled output min '
            'cosine); limits: fp32 |diff| <= {}, int8 cosine >= {}:'.format(
                FP32_ATOL, INT8_MIN_COSINE), '',
            table(['shape'] + variants, checks)]


def train_section(rows):
    """The fine-tuning step table."""
    return ['Fine-tuning step, batch {} x seq {} (forward + backward + update):'.format(
        *TRAIN_SHAPE), '', table(['framework', 'time', '~GFLOP/s (3x forward)'], [
            [v, speed_cell(row, 'step'), '{:.1f} ({:.0f}%)'.format(row['gflops'],
                                                                   row['pct_gemm_peak'])]
            for v, row in rows.items()])]


def memory_section(memory):
    """The peak-memory table."""
    return ['Peak resident memory, MB (a fresh process each, batch {} x seq {}; int8 includes '
            'its fp32 model and calibration):'.format(*TRAIN_SHAPE), '',
            table(['framework', 'inference', 'training step'],
                  [[fw, modes.get('infer', '-'), modes.get('train', '-')]
                   for fw, modes in memory.items()])]


def model_report(name, result):
    """The markdown section of one model."""
    parts = ['## {} ({} weights)'.format(name, result['weights']), '']
    parts += inference_section(result)
    if 'train' in result:
        parts += [''] + train_section(result['train'])
    if 'memory' in result:
        parts += [''] + memory_section(result['memory'])
    return '\n'.join(parts)


def refusals(report):
    """'model variant at shape' for every variant refused for disagreeing."""
    return ['{} {} at {}'.format(name, variant, shape)
            for name, result in report['models'].items()
            for shape, checks in result['agreement'].items()
            for variant, check in checks.items() if not check['passed']]


def render(report):
    """The whole markdown report."""
    machine = report['machine']
    simd = ', '.join('{} {}'.format(k, 'yes' if v else 'no') for k, v in machine['simd'].items())
    head = ['# gluonbert benchmark', '',
            '- machine: {} · {} cores · {} · load average {}'.format(
                machine['cpu'], machine['cores'], simd,
                ' '.join('{:.2f}'.format(x) for x in machine['load_average'])),
            '- OMP_NUM_THREADS={} ({}); torch threads the same'.format(
                machine['omp_num_threads'], machine['threads_note']),
            '- date: {}'.format(report['date']),
            '- versions: {}'.format(', '.join('{} {}'.format(k, v)
                                              for k, v in report['versions'].items())),
            '- command: `{}`'.format(report['command']),
            '- repeats {} (median) after {} warmup run(s), variants interleaved round-robin'
            .format(report['repeats'], report['warmup']),
            '- fp32 GEMM peak: {:.1f} GFLOP/s (median 2048x2048 mx.nd.dot)'.format(
                report['gemm_peak_gflops'])]
    refused = ['**Refused** (disagreed with gluonbert fp32, so not timed): ' +
               '; '.join(report['refused'])] if report['refused'] else []
    return '\n\n'.join(['\n'.join(head)] + [model_report(name, result)
                                           for name, result in report['models'].items()] +
                       refused)


def write_json_atomically(path, data):
    """Write `data` as JSON through a temp file renamed into place."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix='.benchmark-', suffix='.json')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def main(argv=None):
    """Run the benchmark, print the markdown report; returns the report dict (or None for a
    memory probe)."""
    args = parse_args(argv)
    threads, how = configure_threads(args.threads)
    if args.memory_probe:
        return memory_probe(*args.memory_probe, args.probe_config)
    libraries = versions()  # imports the frameworks, after OMP_NUM_THREADS is set
    setup_torch(threads)
    command = ['scripts/benchmark.py'] + (sys.argv[1:] if argv is None else list(argv))
    report = dict(machine=machine_info(threads, how), versions=libraries,
                  date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  command=' '.join(command), repeats=args.repeats, warmup=args.warmup,
                  gemm_peak_gflops=gemm_peak(), models={})
    with tempfile.TemporaryDirectory(prefix='gluonbert-bench-') as folder:
        built = [build_models(name, os.path.join(folder, name)) for name in args.models]
        for models in built:  # every conversion is checked before the first timing
            preflight(models, args.shapes[0], args.levers)
        for models in built:
            report['models'][models['name']] = bench_model(models, args,
                                                           report['gemm_peak_gflops'])
    report['machine']['load_average_after'] = os.getloadavg()
    report['refused'] = refusals(report)
    print(render(report))
    if args.json:
        write_json_atomically(args.json, report)
    return report


if __name__ == '__main__':
    REPORT = main()
    sys.exit(1 if REPORT and REPORT['refused'] else 0)  # a refused variant fails the run
