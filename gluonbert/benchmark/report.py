"""The benchmark's report: markdown tables on stdout, the same data as JSON."""

from .inputs import TRAIN_SHAPE
from .variants import FP32_ATOL, INT8_MIN_COSINE, OURS, SHORT


def table(header: list, rows: list) -> str:
    """A markdown table."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows])


def ratios(row: dict) -> str:
    """'1.12x HF · 2.03x GluonNLP' for a timing row."""
    return ' · '.join(f'{value:.2f}x {SHORT[peer]}' for peer, value in row['vs'].items())


def speed_cell(row: dict, unit: str = 'batch') -> str:
    """One variant's timing as a table cell."""
    text = f'{row["seconds"]:.4g} s/{unit} · {row["seq_per_s"]:.1f}/s'
    return text + (' · ' + ratios(row) if row['vs'] else '')


def cells(result: dict, fmt, refused: str = 'refused') -> tuple[list, list]:
    """Rows of shape + one cell per variant (`fmt(timing row)`, or `refused`)."""
    variants = [OURS] + list(next(iter(result['agreement'].values())))
    rows = [[shape] + [fmt(row[v]) if v in row else refused for v in variants]
            for shape, row in result['inference'].items()]
    return ['shape'] + variants, rows


def agreement_cell(check: dict) -> str:
    """'1.2e-06 · 1.00000', with REFUSED when the variant missed its limits."""
    text = f'{check["max_abs_diff"]:.2g} · {check["min_cosine"]:.5f}'
    if check['passed']:
        return text
    return text + f' REFUSED (limit {check.get("cosine_limit", INT8_MIN_COSINE)})'


def rate_cell(row: dict) -> str:
    """'122.6 (52%)': GFLOP/s and % of the multiply-add peak of the variant's precision, or of
    the fp32 GEMM peak ('122.6 (59% GEMM)') where the multiply-add peak was not measured."""
    if row.get('pct_fma_peak') is not None:
        return f'{row["gflops"]:.1f} ({row["pct_fma_peak"]:.0f}%)'
    return f'{row["gflops"]:.1f} ({row["pct_gemm_peak"]:.0f}% GEMM)'


def inference_section(result: dict) -> list[str]:
    """Speed, GFLOP/s and agreement tables of one model."""
    variants = list(next(iter(result['agreement'].values())))
    checks = [[shape] + [agreement_cell(c[v]) for v in variants]
              for shape, c in result['agreement'].items()]
    return ['Inference: median s/batch · sequences/s · speed vs each peer (1.12x HF: 1.12 '
            'times as many sequences/s as HF torch)', '',
            table(*cells(result, speed_cell, 'refused: disagrees (below)')), '',
            'Achieved GFLOP/s (% of the multiply-add peak of the variant\'s precision, see '
            'above; int8 and bf16 count the same operations as fp32):', '',
            table(*cells(result, rate_cell)), '',
            'Agreement with gluonbert fp32 (sequence output max |diff| · pooled output min '
            f'cosine); limits: fp32 |diff| <= {FP32_ATOL}, int8 and bf16 cosine >= '
            f'{INT8_MIN_COSINE}:', '',
            table(['shape'] + variants, checks)]


def train_section(rows: dict) -> list[str]:
    """The fine-tuning step table."""
    batch, seq_len = TRAIN_SHAPE
    return [f'Fine-tuning step, batch {batch} x seq {seq_len} (forward + backward + update):',
            '', table(['framework', 'time', '~GFLOP/s (3x forward)'], [
                [v, speed_cell(row, 'step'), rate_cell(row)]
                for v, row in rows.items()])]


def memory_section(memory: dict) -> list[str]:
    """The peak-memory table."""
    batch, seq_len = TRAIN_SHAPE
    return [f'Peak resident memory, MB (a fresh process each, batch {batch} x seq {seq_len}; '
            'int8 includes its fp32 model and calibration):', '',
            table(['framework', 'inference', 'training step'],
                  [[fw, modes.get('infer', '-'), modes.get('train', '-')]
                   for fw, modes in memory.items()])]


def model_report(name: str, result: dict) -> str:
    """The markdown section of one model."""
    parts = [f'## {name} ({result["weights"]} weights)', '']
    parts += inference_section(result)
    if 'train' in result:
        parts += [''] + train_section(result['train'])
    if 'memory' in result:
        parts += [''] + memory_section(result['memory'])
    return '\n'.join(parts)


def refusals(report: dict) -> list[str]:
    """'model variant at shape' for every variant refused for disagreeing."""
    return [f'{name} {variant} at {shape}'
            for name, result in report['models'].items()
            for shape, checks in result['agreement'].items()
            for variant, check in checks.items() if not check['passed']]


def machine_lines(machine: dict) -> list[str]:
    """The report's lines on the CPU, its flags, native low precisions and thread settings."""
    simd = ', '.join(f'{k} {"yes" if v else "no"}' for k, v in machine['simd'].items())
    load = ' '.join(f'{x:.2f}' for x in machine['load_average'])
    lines = [f'- machine: {machine["cpu"]} · {machine["cores"]} cores · {simd} · load average '
             f'{load}',
             f'- CPU flags: {" ".join(machine["cpu_flags"]) or "none read"}',
             f'- OMP_NUM_THREADS={machine["omp_num_threads"]} ({machine["threads_note"]}); '
             'the same for ' + ', '.join(f'{k} {v}' for k, v in machine['threads'].items()
                                         if k != 'OMP_NUM_THREADS')]
    if not machine['simd']['vnni']:
        lines.append('- no VNNI on this CPU: the int8 variants run on int8 kernels without '
                     'VNNI dot products')
    if not machine['simd']['bf16']:
        lines.append('- no native bf16 on this CPU (avx512_bf16 / amx_bf16): the bf16 variants '
                     'did not run')
    return lines


def peak_lines(peaks: dict, amx: bool = False) -> list[str]:
    """The report's lines on the yardsticks: multiply-add peaks per precision, fp32 GEMM rate
    (amx: the CPU has AMX tiles, which the probe does not measure)."""
    gemm = (f'- fp32 GEMM: {peaks["gemm_fp32"]:.1f} GFLOP/s (median 2048x2048 mx.nd.dot)')
    if not peaks['fma']:
        return [f'- multiply-add peak: not measured ({peaks["fma_note"]}); percentages are of '
                'the fp32 GEMM rate', gemm]
    rates = ', '.join(f'{p} {g:.1f}' if g else f'{p} none (no native instruction)'
                      for p, g in peaks['fma'].items())
    amx_note = ('; this CPU also has AMX tiles, not measured: bf16 and int8 code on them can '
                'exceed these' if amx else '')
    return [f'- multiply-add peak, GFLOP/s on the threads above: {rates} (gluonbert/benchmark/'
            'fma_peak.c: independent FMA / dot-product chains on the vector units, no memory '
            f'traffic: an upper bound for code on those units{amx_note})', gemm]


def render(report: dict) -> str:
    """The whole markdown report."""
    head = (['# gluonbert benchmark', ''] + machine_lines(report['machine']) + [
        f'- date: {report["date"]}',
        '- versions: ' + ', '.join(f'{k} {v}' for k, v in report['versions'].items()),
        f'- command: `{report["command"]}`',
        f'- repeats {report["repeats"]} (median) after {report["warmup"]} warmup run(s), '
        'variants interleaved round-robin',
    ] + peak_lines(report['peaks'], report['machine']['simd'].get('amx', False)))
    head += [f'- not run: {name} ({reason})' for name, reason in report['skipped'].items()]
    refused = ['**Refused** (disagreed with gluonbert fp32, so not timed): ' +
               '; '.join(report['refused'])] if report['refused'] else []
    return '\n\n'.join(['\n'.join(head)] + [model_report(name, result)
                                           for name, result in report['models'].items()] +
                       refused)

