"""Inspect a registered model: summary table, a timed hybridized forward, export + re-import.

  python scripts/inspect_model.py --model bert_12_768_12 --output-dir out/inspect
"""
import argparse
import os
import time

import mxnet as mx
import numpy as np

from gluonbert.export import export_model, import_model, sample_inputs
from gluonbert.registry import get_model
from gluonbert.summary import model_summary


def main(argv=None):
    """Run the inspection; returns the max abs difference of the re-imported outputs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--model', default='bert_12_768_12')
    parser.add_argument('--output-dir', default='out/inspect')
    parser.add_argument('--seq-len', type=int, default=128)
    parser.add_argument('--batch-size', type=int, default=8)
    args = parser.parse_args(argv)

    model, vocab = get_model(args.model, pretrained=False, use_decoder=False,
                             use_classifier=False)
    print(f'{args.model} with a {len(vocab):,}-token vocabulary (random weights)\n')
    small = sample_inputs(len(vocab), batch_size=2, seq_len=16)
    print(model_summary(model, *small, max_depth=3))
    print('(inside the encoder, activations are time-major (seq_len, batch, units): the layout '
          "of MXNet's fused attention kernels)\n")

    inputs = sample_inputs(len(vocab), args.batch_size, args.seq_len, seed=1)
    model.hybridize(static_alloc=True)
    model(*inputs)[0].wait_to_read()  # builds the cached graph
    start = time.time()
    sequence, pooled = model(*inputs)
    sequence.wait_to_read()
    elapsed = time.time() - start
    print('hybridized forward, batch {} x seq {}: {:.3f} s ({:.1f} sequences/s, '
          'OMP_NUM_THREADS={})'.format(args.batch_size, args.seq_len, elapsed,
                                       args.batch_size / elapsed,
                                       os.environ.get('OMP_NUM_THREADS', 'unset')))

    prefix = os.path.join(args.output_dir, args.model)
    symbol_file, params_file = export_model(model, prefix, inputs)
    print(f'exported {params_file} ({os.path.getsize(params_file) / 2 ** 20:.1f} MB) and '
          f'{symbol_file}')
    imported = import_model(prefix, num_inputs=3)
    worst = 0.0
    for seq_len in (args.seq_len, args.seq_len // 2):  # the graph is length-agnostic
        batch = sample_inputs(len(vocab), 2, seq_len, seed=seq_len)
        for ours, theirs in zip(model(*batch), imported(*batch)):
            worst = max(worst, float(np.abs(ours.asnumpy() - theirs.asnumpy()).max()))
        print(f're-imported SymbolBlock at seq_len {seq_len}: outputs match (max abs diff so far '
              f'{worst:.2e})')
    if worst > 1e-5:
        raise SystemExit(f'exported model disagrees with the original: {worst:.2e}')
    return worst


if __name__ == '__main__':
    mx.random.seed(0)
    main()
