"""Accuracy of a fine-tuned classifier in float32 against int8 and bfloat16 on a labelled dev set.

int8 is calibrated on the first --calib-samples sentences of --calib-file (by default the
training file's, so the dev sentences stay unseen); bfloat16 runs where the CPU has bf16 kernels
and is reported as skipped, with the reason, where it has not. Prints each accuracy, its
difference to float32 in points and the dev-set inference time.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/precision_accuracy.py --model-dir out/demo/export \
        --dev-file ../shared/data/glue/SST-2/dev.tsv --calib-file data/sst2/train.tsv
"""
import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from gluonbert.data import read_table  # noqa: E402
from gluonbert.errors import run_main  # noqa: E402
from gluonbert.files import write_json  # noqa: E402
from gluonbert.inference import SentenceClassifier  # noqa: E402
from gluonbert.precision import UnsupportedPrecisionError  # noqa: E402
from gluonbert.quantization import CALIB_MODES, CLASSIFIER_CALIB_MODE  # noqa: E402
from gluonbert.train.script_args import existing_dir, existing_file, positive_int  # noqa: E402

PRECISIONS = ('int8', 'bfloat16')


def build_parser():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model-dir', required=True, type=existing_dir,
                   help='export/ folder of finetune_classifier.py')
    p.add_argument('--dev-file', required=True, type=existing_file,
                   help='labelled TSV with a header')
    p.add_argument('--calib-file', required=True, type=existing_file,
                   help='TSV whose sentences calibrate int8')
    p.add_argument('--precisions', nargs='+', choices=PRECISIONS, default=list(PRECISIONS))
    p.add_argument('--text-column', default='sentence',
                   help='the text column, or two comma-separated for sentence pairs '
                        '(MRPC: "#1 String,#2 String")')
    p.add_argument('--label-column', default='label')
    p.add_argument('--calib-samples', type=positive_int, default=512)
    p.add_argument('--calib-mode', default=CLASSIFIER_CALIB_MODE, choices=CALIB_MODES,
                   help='int8 calibration: entropy (KL, the default) or naive (min/max)')
    p.add_argument('--batch-size', type=positive_int, default=32)
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    return p


def accuracy(classifier, texts, labels, batch_size):
    """-> (accuracy, seconds) of `classifier` on texts with string labels."""
    start = time.time()
    predicted = classifier.predict(texts, batch_size)
    seconds = time.time() - start
    return float(np.mean([p == y for p, y in zip(predicted, labels)])), seconds


def text_of(fields):
    """One text, or a (first, second) pair, from a row's text fields."""
    return fields[0] if len(fields) == 1 else tuple(fields)


def low_precision(args, precision, calib):
    """The classifier of `args.model_dir` in int8 (calibrated) or bfloat16."""
    if precision == 'bfloat16':
        return SentenceClassifier(args.model_dir, precision='bfloat16')
    return SentenceClassifier(args.model_dir).quantize(calib[:args.calib_samples],
                                                       args.batch_size, args.calib_mode)


def main(argv=None):
    """Run; returns the results dict."""
    args = build_parser().parse_args(argv)
    columns = args.text_column.split(',')
    dev = read_table(args.dev_file, columns, label_field=args.label_column)
    texts, labels = [text_of(row[:-1]) for row in dev], [row[-1] for row in dev]
    calib = [text_of(row) for row in read_table(args.calib_file, columns)]
    fp32_acc, fp32_s = accuracy(SentenceClassifier(args.model_dir), texts, labels,
                                args.batch_size)
    results = dict(model_dir=args.model_dir, dev_file=args.dev_file, dev_samples=len(texts),
                   calib_samples=min(args.calib_samples, len(calib)), calib_mode=args.calib_mode,
                   float32=dict(accuracy=fp32_acc, seconds=round(fp32_s, 2)), skipped={})
    print(f'dev accuracy: float32 {100 * fp32_acc:.2f}% ({fp32_s:.1f} s)')
    for precision in args.precisions:
        try:
            classifier = low_precision(args, precision, calib)
        except UnsupportedPrecisionError as err:
            results['skipped'][precision] = str(err)
            print(f'{precision}: skipped ({err})')
            continue
        acc, seconds = accuracy(classifier, texts, labels, args.batch_size)
        results[precision] = dict(accuracy=acc, seconds=round(seconds, 2),
                                  difference_points=round(100 * (acc - fp32_acc), 2))
        print(f'{precision}: {100 * acc:.2f}% ({100 * (acc - fp32_acc):+.2f} points); dev pass '
              f'{seconds:.1f} s ({fp32_s / seconds:.2f}x float32)')
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:]))
