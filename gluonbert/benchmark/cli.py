"""The benchmark's command line: its options, one model's whole run, and main."""
import argparse
import datetime
import gc
import os
import sys
import tempfile

from ..convert.hf import hparams_to_config
from . import __doc__ as PACKAGE_DOC
from .gluonbert_peer import build_gluonbert, gluonbert_arrays
from .gluonnlp_peer import gluonnlp_model
from .inference import bench_inference, preflight
from .machine import THREADS_NOTE, configure_threads, machine_info, restart_needed, versions
from .memory import available_memory_gb, memory_probe, memory_warning, probe_memory
from .peak import fma_peak, gemm_peak
from .peers import available_peers
from ..files import write_json
from ..registry import list_models
from ..train.script_args import non_negative_int, positive_int
from .report import refusals, render
from .timing import flops
from .torch_peer import hf_model, setup_torch
from .training import bench_train

DEFAULT_MODELS = ('bert_12_768_12', 'bert_6_384_12')
DEFAULT_SHAPES = ('1x128', '8x128', '32x128', '8x384')


def parse_shape(text: str) -> tuple[int, int]:
    """'8x128' -> (8, 128)."""
    try:
        batch, seq_len = (int(part) for part in text.lower().split('x'))
    except ValueError:
        batch = seq_len = 0
    if batch < 1 or seq_len < 1:
        raise argparse.ArgumentTypeError(
            f'a shape is BATCHxSEQ_LEN with both >= 1, e.g. 8x128; got {text!r}')
    return batch, seq_len


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the package docstring)."""
    parser = argparse.ArgumentParser(description=PACKAGE_DOC.split('\n', maxsplit=1)[0])
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help='registered gluonbert model names (default: %(default)s)')
    parser.add_argument('--shapes', nargs='+', default=list(DEFAULT_SHAPES),
                        help='inference shapes BATCHxSEQ_LEN (default: %(default)s)')
    parser.add_argument('--repeats', type=positive_int, default=9,
                        help='timed runs per variant (median)')
    parser.add_argument('--warmup', type=non_negative_int, default=2,
                        help='untimed runs per variant first')
    parser.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory probes')
    parser.add_argument('--no-train', action='store_true', help='skip the fine-tuning step')
    parser.add_argument('--levers', action='store_true',
                        help='also time gluonbert fp32 + optimize_for(MKLDNN)')
    parser.add_argument('--threads', type=positive_int,
                        help='OMP_NUM_THREADS and the threads of torch, ONNX Runtime and '
                             'OpenVINO (default: $OMP_NUM_THREADS, else the number of cores)')
    parser.add_argument('--memory-probe', nargs=3, metavar=('FRAMEWORK', 'MODE', 'MODEL'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--probe-config', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.shapes = [parse_shape(text) for item in args.shapes for text in item.split(',')
                       if text]
    except argparse.ArgumentTypeError as err:
        parser.error(f'--shapes: {err}')
    registered = list_models()
    unknown = [name for name in args.models if name not in registered]
    if unknown and not args.memory_probe:
        parser.error(f'--models: unknown {unknown}; registered: {sorted(registered)}')
    return args


def build_models(name: str, folder: str, threads: int, peers: list) -> dict:
    """gluonbert's model and its peers, all holding the same weights; files go to `folder`;
    `peers`: the optional peers to run, on `threads` threads."""
    print(f'{name}: building gluonbert, HF and GluonNLP models', file=sys.stderr)
    os.makedirs(folder)
    net, vocab, weights = build_gluonbert(name)
    net.hybridize(static_alloc=True, static_shape=True)
    config = dict(net.config)
    nlp = gluonnlp_model(config, vocab, gluonbert_arrays(net))
    nlp.hybridize(static_alloc=True, static_shape=True)
    return dict(name=name, net=net, vocab=vocab, weights=weights, config=config, folder=folder,
                nlp=nlp, threads=threads, peers=peers,
                hf=hf_model(net, vocab, folder, 'BertModel').eval(),
                hf_config=hparams_to_config(config, 'BertModel', vocab[vocab.padding_token]))


def bench_model(models: dict, args: argparse.Namespace, peaks: dict) -> dict:
    """Everything measured for one model -> a JSON-ready dict."""
    config = models['config']
    result = dict(weights=models['weights'], config=config,
                  gflop_per_sequence={str(s): flops(config, s) / 1e9
                                      for s in sorted({s for _, s in args.shapes})})
    result['agreement'], result['inference'] = bench_inference(models, args, peaks)
    if not args.no_train:
        result['train'] = bench_train(models, args, peaks)
    if not args.no_memory:
        result['memory'] = probe_memory(models['name'],
                                        dict(hparams=config, hf=models['hf_config']),
                                        not args.no_train)
    return result


def measure_peaks(threads: int) -> dict:
    """The yardsticks of the GFLOP/s tables: {'gemm_fp32': G, 'fma': {'fp32': G, 'bf16': G or
    None, 'int8': G or None} or {}, 'fma_note': why the FMA probe did not run, or None}."""
    fma, why = fma_peak(threads)
    if why:
        print(f'note: no multiply-add peak ({why}); GFLOP/s are shown against the GEMM peak',
              file=sys.stderr)
    return dict(gemm_fp32=gemm_peak(), fma=fma, fma_note=why)


def main(argv: list[str] | None = None, prog: str = 'scripts/benchmark.py') -> dict | None:
    """Run the benchmark, print the markdown report; returns the report dict (or None for a
    memory probe). `prog` names the command in the report."""
    args = parse_args(argv)
    threads, how = configure_threads(args.threads)
    if restart_needed():
        how += ' (MXNet was already imported and keeps its own setting)'
    if args.memory_probe:
        return memory_probe(*args.memory_probe, args.probe_config)
    registered = list_models()
    warning = memory_warning({name: registered[name] for name in args.models},
                             available_memory_gb())
    if warning:
        print(f'warning: {warning}', file=sys.stderr)
    libraries = versions()  # imports the frameworks, after OMP_NUM_THREADS is set
    setup_torch(threads)
    peers, skipped = available_peers()
    machine = machine_info(threads, how)
    print('threads: ' + ', '.join(f'{k} {v}' for k, v in machine['threads'].items()),
          file=sys.stderr)
    for name, reason in skipped.items():
        print(f'skipped: {name}: {reason}', file=sys.stderr)
    command = [prog] + (sys.argv[1:] if argv is None else list(argv))
    report = dict(machine=machine, versions=libraries,
                  date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  command=' '.join(command), repeats=args.repeats, warmup=args.warmup,
                  peaks=measure_peaks(threads), skipped=skipped, models={})
    with tempfile.TemporaryDirectory(prefix='gluonbert-bench-') as folder:
        built = [build_models(name, os.path.join(folder, name), threads, peers)
                 for name in args.models]
        for models in built:  # every conversion is checked before the first timing
            preflight(models, args.shapes[0], args.levers)
        while built:  # each model's runtimes are let go once it is measured
            models = built.pop(0)
            report['models'][models['name']] = bench_model(models, args, report['peaks'])
            models.clear()
            gc.collect()
    report['machine']['load_average_after'] = os.getloadavg()
    report['refused'] = refusals(report)
    print(render(report))
    if args.json:
        write_json(args.json, report)
    return report


def entry(prog: str) -> None:
    """Console entry point: run main() on sys.argv and exit 1 when a variant was refused.

    MXNet reads OMP_NUM_THREADS once, when gluonbert imports it; when the thread count this run
    asks for differs, the process restarts itself with it set (the same command line)."""
    args = parse_args()
    _, how = configure_threads(args.threads)
    if restart_needed():
        os.environ[THREADS_NOTE] = how
        print(f'restarting with OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]}: MXNet was '
              'loaded with another thread count', file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable] + sys.orig_argv[1:])
    report = main(prog=prog)
    sys.exit(1 if report and report['refused'] else 0)  # a refused variant fails the run
