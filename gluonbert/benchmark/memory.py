"""Peak resident memory of each framework and mode, each measured in a fresh process."""
import json
import os
import resource
import subprocess
import sys

import mxnet as mx

from ..data import BERTVocab, bundled_vocab_path
from .gluonbert_peer import (build_gluonbert, gluonbert_classifier, int8_model, mx_inputs,
                             mx_runner, mx_train_step)
from .gluonnlp_peer import gluonnlp_classifier, gluonnlp_model
from .inputs import TRAIN_SHAPE, train_batch
from .torch_peer import hf_from_config, hf_inputs, hf_runner, hf_train_step, setup_torch

PROBE_ITERATIONS = 3
# gluonbert infer: get_model(..., for_training=False); gluonbert-grads: the default, which
# allocates a gradient buffer per parameter as MXNet does at initialization
PROBES = (('gluonbert', 'infer'), ('gluonbert', 'train'), ('gluonbert-grads', 'infer'),
          ('gluonbert-int8', 'infer'),
          ('hf', 'infer'), ('hf', 'train'), ('gluonnlp', 'infer'), ('gluonnlp', 'train'))
# Peak resident memory of one model's whole run (every peer, four shapes, the training step,
# without the memory probes, which run in their own processes), fitted to the two runs measured
# on 2026-12-05 (docs/performance.md): BERT-base (109.5M parameters) 22.3 GB, MiniLM (22.7M)
# 6.3 GB. A rough guide for the warning below, not a promise.
RUN_BASE_GB, RUN_GB_PER_MILLION_PARAMETERS = 2.1, 0.184
# the folder holding the gluonbert package: the probe runs `-m gluonbert.benchmark` from it
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probe_hf(mode: str, config: dict, inputs: tuple, labels):
    """A memory probe's HF model (its own random weights) as one-iteration callable."""
    import torch
    setup_torch(int(os.environ['OMP_NUM_THREADS']))
    if mode == 'train':
        model = hf_from_config(config['hf'], 'BertForSequenceClassification')
        return hf_train_step(model, hf_inputs(inputs), torch.from_numpy(labels))
    return hf_runner(hf_from_config(config['hf'], 'BertModel').eval(), hf_inputs(inputs))


def probe_mxnet(framework: str, mode: str, name: str, config: dict, inputs: tuple, labels):
    """A memory probe's gluonbert, gluonbert int8 or GluonNLP model as one-iteration callable."""
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


def peak_rss_mb() -> float:
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


def memory_probe(framework: str, mode: str, name: str, config_json: str) -> None:
    """Child process: build one model, run it a few times, print its peak RSS in MB."""
    config = json.loads(config_json)
    inputs, labels = train_batch(config['hparams']['vocab_size'])
    run = (probe_hf(mode, config, inputs, labels) if framework == 'hf' else
           probe_mxnet(framework, mode, name, config, inputs, labels))
    for _ in range(PROBE_ITERATIONS):
        run()
    print(f'peak_rss_mb {peak_rss_mb():.1f}')


def probe_command(framework: str, mode: str, name: str, config: dict) -> tuple[list, dict]:
    """(argv, environment) of a fresh process measuring one (framework, mode) of a model."""
    path = os.environ.get('PYTHONPATH')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT] + ([path] if path else [])))
    return [sys.executable, '-m', 'gluonbert.benchmark', '--memory-probe', framework, mode, name,
            '--probe-config', json.dumps(config)], env


def probe_memory(name: str, config: dict, train: bool) -> dict:
    """Peak RSS (MB) of each (framework, mode), each measured in a fresh process."""
    out = {}
    for framework, mode in PROBES:
        if mode == 'train' and not train:
            continue
        cmd, env = probe_command(framework, mode, name, config)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        lines = done.stdout.split()
        if done.returncode != 0 or 'peak_rss_mb' not in lines:
            raise RuntimeError(f'memory probe {framework} {mode} {name} failed (exit '
                               f'{done.returncode}):\n{done.stderr[-3000:]}')
        out.setdefault(framework, {})[mode] = float(lines[lines.index('peak_rss_mb') + 1])
        print(f'  memory {framework} {mode}: {out[framework][mode]} MB', file=sys.stderr)
    return out


def bert_parameter_count(config: dict) -> int:
    """Parameters of a BERTModel with pooler (the benchmarked model) from its hyperparameters:
    embeddings and their LayerNorm, every layer's Dense layers and LayerNorms, the pooler."""
    units, hidden = config['units'], config['hidden_size']
    embeddings = (config['vocab_size'] + config['max_length'] + config['token_type_vocab_size']
                  ) * units + 2 * units
    layer = (4 * units * units + 4 * units) + (2 * units * hidden + hidden + units) + 4 * units
    return embeddings + config['num_layers'] * layer + units * units + units


def available_memory_gb() -> float | None:
    """MemAvailable of /proc/meminfo in GB, or None where it cannot be read (not Linux)."""
    try:
        with open('/proc/meminfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_warning(configs: dict, available_gb: float | None) -> str | None:
    """One line when the largest model's run (name -> hyperparameters) may need more memory than
    is available (models are measured one after the other, each released before the next), or
    None."""
    if available_gb is None or not configs:
        return None
    parameters, name = max((bert_parameter_count(c), n) for n, c in configs.items())
    need = RUN_BASE_GB + RUN_GB_PER_MILLION_PARAMETERS * parameters / 1e6
    if need <= available_gb:
        return None
    return (f'{name}\'s run may peak near {need:.0f} GB of memory (BERT-base peaked at 22.3 GB '
            f'with every peer, four shapes and the training step) and {available_gb:.1f} GB are '
            'available: use fewer --shapes, --no-train or fewer peers, or the run may be killed '
            'part-way')
