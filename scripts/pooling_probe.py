"""Which sentence vector of a frozen checkpoint separates SST-2 best: a ridge classifier on the
pooled [CLS], the raw [CLS] and the mean of the tokens, trained on the committed 8,000-sentence
slice and scored on its 872 dev sentences (best of a few ridge strengths each).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/pooling_probe.py
"""
import argparse
import os
import sys

import mxnet as mx
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from gluonbert import get_model  # noqa: E402
from gluonbert.data import BERTTokenizer, read_table  # noqa: E402
from gluonbert.data.transforms import BERTSentenceTransform  # noqa: E402
from gluonbert.inference import _inputs  # noqa: E402
from gluonbert.model.task_heads import mean_over_valid  # noqa: E402


def read_split(path):
    """SST-2 TSV -> (sentences, labels as a numpy int array)."""
    rows = read_table(path, ['sentence', 'label'])
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


def features(net, transform, texts, batch_size=64):
    """-> {'pooled': (N, units), 'cls': (N, units), 'mean': (N, units)} of the frozen model."""
    out = {'pooled': [], 'cls': [], 'mean': []}
    for start in range(0, len(texts), batch_size):
        ids, types, lengths = _inputs(transform, texts[start:start + batch_size], mx.cpu())
        sequence, pooled = net(ids, types, lengths)
        out['pooled'].append(pooled.asnumpy())
        out['cls'].append(sequence[:, 0, :].asnumpy())
        out['mean'].append(mean_over_valid(mx.nd, sequence, lengths).asnumpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def ridge_accuracy(train_x, train_y, dev_x, dev_y, strength):
    """Standardized features, ridge regression on ±1 labels -> dev accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a = np.hstack([(train_x - mean) / std, np.ones((len(train_x), 1))])
    b = np.hstack([(dev_x - mean) / std, np.ones((len(dev_x), 1))])
    w = np.linalg.solve(a.T @ a + strength * np.eye(a.shape[1]), a.T @ (2.0 * train_y - 1))
    return float(((b @ w > 0) == dev_y).mean())


def main(argv=None):
    """Print the dev accuracy of each sentence vector at each ridge strength."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default=os.path.join(REPO, 'data', 'sst2'))
    parser.add_argument('--model', default='bert_6_384_12')
    parser.add_argument('--dataset-name', default='all_minilm_l6_v2')
    parser.add_argument('--max-len', type=int, default=64)
    args = parser.parse_args(argv)
    net, vocab = get_model(args.model, dataset_name=args.dataset_name, pretrained=True,
                           use_decoder=False, use_classifier=False, for_training=False)
    net.hybridize(static_alloc=True)
    transform = BERTSentenceTransform(BERTTokenizer(vocab), args.max_len, pad=False, pair=False)
    train_texts, train_y = read_split(os.path.join(args.data_dir, 'train.tsv'))
    dev_texts, dev_y = read_split(os.path.join(args.data_dir, 'dev.tsv'))
    train, dev = features(net, transform, train_texts), features(net, transform, dev_texts)
    best = {}
    for name in ('pooled', 'cls', 'mean'):
        for strength in (1, 10, 100, 1000):
            acc = ridge_accuracy(train[name], train_y, dev[name], dev_y, strength)
            best[name] = max(best.get(name, 0.0), acc)
            print(f'{name:<7} ridge {strength:>5}: dev accuracy {acc:.4f}')
    print('best: ' + ', '.join(f'{n} {100 * a:.1f}%' for n, a in best.items()))
    return best


if __name__ == '__main__':
    main()
