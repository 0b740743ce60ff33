"""Timing: variants interleaved round-robin, medians, FLOPs, and rates against the peaks."""
import statistics
import time

from .variants import PEERS, precision_of


def flops(config: dict, seq_len: int) -> int:
    """Forward FLOPs of one sequence: 2 per multiply-add of every matmul (dense layers, attention
    scores and context, the pooler); embeddings, softmax, LayerNorm and GELU are not counted.

    BERT-base at seq_len 128: 12 * 128 * (2 * 7,077,888 + 4 * 128 * 768) + 2 * 768^2 = 22.35e9.
    """
    units, layers = config['units'], config['num_layers']
    dense = 4 * units * units + 2 * units * config['hidden_size']  # qkv, out_proj, ffn_1, ffn_2
    attention = 4 * seq_len * units  # per token: q.K^T and weights.V, 2 * seq_len * units each
    return layers * seq_len * (2 * dense + attention) + 2 * units * units


def time_round_robin(runners: dict, repeats: int, warmup: int) -> dict:
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


def summarize(times: dict, batch: int, work: float, peaks: dict) -> dict:
    """Per-variant medians: seconds, sequences/s, GFLOP/s, % of the fp32 GEMM peak and % of the
    multiply-add peak of the variant's precision (None where not measured), with each variant's
    speed ratio to the peers (>1: faster than that peer). peaks: report['peaks']."""
    out = {}
    for name, runs in times.items():
        seconds = statistics.median(runs)
        gflops = work / seconds / 1e9
        fma = peaks['fma'].get(precision_of(name))
        out[name] = dict(seconds=seconds, seq_per_s=batch / seconds, gflops=gflops,
                         pct_gemm_peak=100 * gflops / peaks['gemm_fp32'],
                         pct_fma_peak=100 * gflops / fma if fma else None, times=runs)
    for name, row in out.items():
        row['vs'] = {peer: out[peer]['seconds'] / row['seconds'] for peer in PEERS
                     if peer in out and peer != name}
    return out


def median_seconds(run, repeats: int, warmup: int = 1, calls: int = 1) -> float:
    """Median seconds of one `run()` (which must wait for its result): `warmup` untimed calls,
    then `repeats` samples of `calls` calls each."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)
