"""Inference at each shape: every variant's runner, the agreement check, then the timings."""
import sys

from .agreement import agreement
from .gluonbert_peer import int8_model, mx_inputs, mx_runner, optimized_model
from .inputs import make_inputs
from .peers import optional_runners
from .timing import flops, summarize, time_round_robin
from .torch_peer import hf_inputs, hf_runner
from .variants import HF, INT8, LEVER, NLP, OURS


def variant_runners(models: dict, inputs: tuple, levers: bool, int8=None,
                    fp32_only: bool = False) -> dict:
    """Every variant's runner on one input batch: gluonbert fp32, int8 (given the quantized
    model), the lever (with `levers`), HF and GluonNLP, then the optional peers (`fp32_only`:
    only their fp32 ones)."""
    net, arrays = models['net'], mx_inputs(inputs)
    runners = {OURS: mx_runner(net, arrays)}
    if int8 is not None:
        runners[INT8] = mx_runner(int8, arrays)
    if levers:
        runners[LEVER] = mx_runner(optimized_model(net, models['folder'], arrays), arrays)
    runners[HF] = hf_runner(models['hf'], hf_inputs(inputs))
    runners[NLP] = mx_runner(models['nlp'], mx_inputs(inputs, 'float32'))
    runners.update(optional_runners(models, inputs, fp32_only))
    return runners


def preflight(models: dict, shape: tuple, levers: bool) -> None:
    """Check the fp32 variants of a model at one shape before anything is timed (fail fast)."""
    inputs = make_inputs(models['config']['vocab_size'], *shape, seed=99)
    agreement(variant_runners(models, inputs, levers, fp32_only=True))


def bench_inference(models: dict, args, peaks: dict) -> tuple[dict, dict]:
    """Agreement, then round-robin timings, at every shape -> (agreement, timings) by shape."""
    checks, timings = {}, {}
    for index, (batch, seq_len) in enumerate(args.shapes):
        key = f'{batch}x{seq_len}'
        inputs = make_inputs(models['config']['vocab_size'], batch, seq_len, seed=index)
        int8 = int8_model(models['net'], models['config']['vocab_size'], batch, seq_len)
        runners = variant_runners(models, inputs, args.levers, int8)
        checks[key] = agreement(runners)
        times = time_round_robin(runners, args.repeats, args.warmup)
        timings[key] = summarize(times, batch, batch * flops(models['config'], seq_len),
                                 peaks)
        print(f'  {key}: ' + ', '.join(f'{name} {row["seconds"]:.4g} s'
                                       for name, row in timings[key].items()), file=sys.stderr)
    return checks, timings
