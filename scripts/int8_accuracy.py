"""Accuracy of a fine-tuned classifier in float32 vs int8 on a labelled dev set.

Calibrates the int8 model on the first --calib-samples sentences of --calib-file (by default
the training file's, so the dev sentences stay unseen), then prints both accuracies, their
difference and the dev-set inference time of each.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/int8_accuracy.py --model-dir out/sst2/export \
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
from gluonbert.files import write_json  # noqa: E402
from gluonbert.inference import SentenceClassifier  # noqa: E402


def build_parser():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model-dir', required=True, help='export/ folder of finetune_classifier.py')
    p.add_argument('--dev-file', required=True, help='labelled TSV with a header')
    p.add_argument('--calib-file', required=True, help='TSV whose sentences calibrate int8')
    p.add_argument('--text-column', default='sentence')
    p.add_argument('--label-column', default='label')
    p.add_argument('--calib-samples', type=int, default=512)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--json', help='also write the results here')
    return p


def accuracy(classifier, texts, labels, batch_size):
    """-> (accuracy, seconds) of `classifier` on texts with string labels."""
    start = time.time()
    predicted = classifier.predict(texts, batch_size)
    seconds = time.time() - start
    return float(np.mean([p == y for p, y in zip(predicted, labels)])), seconds


def main(argv=None):
    """Run; returns the results dict."""
    args = build_parser().parse_args(argv)
    dev = read_table(args.dev_file, [args.text_column], label_field=args.label_column)
    texts, labels = [row[0] for row in dev], [row[1] for row in dev]
    calib = [row[0] for row in read_table(args.calib_file, [args.text_column])]
    classifier = SentenceClassifier(args.model_dir)
    fp32_acc, fp32_s = accuracy(classifier, texts, labels, args.batch_size)
    classifier.quantize(calib[:args.calib_samples], args.batch_size)
    int8_acc, int8_s = accuracy(classifier, texts, labels, args.batch_size)
    results = dict(model_dir=args.model_dir, dev_file=args.dev_file, dev_samples=len(texts),
                   calib_samples=min(args.calib_samples, len(calib)),
                   float32_accuracy=fp32_acc, int8_accuracy=int8_acc,
                   difference_points=round(100 * (int8_acc - fp32_acc), 2),
                   float32_seconds=round(fp32_s, 2), int8_seconds=round(int8_s, 2))
    print('dev accuracy: float32 {:.2f}%  int8 {:.2f}%  ({:+.2f} points); dev pass {:.1f} s vs '
          '{:.1f} s ({:.2f}x)'.format(100 * fp32_acc, 100 * int8_acc,
                                       results['difference_points'], fp32_s, int8_s,
                                       fp32_s / int8_s))
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
