r"""Fine-tune BERT for extractive question answering on SQuAD v1.1 (BERTForQA).

Each question is turned into windows `[CLS] question [SEP] context window [SEP]` (--doc-stride
apart); the loss is the mean of the start and end softmax cross-entropies. A question's answer
is the best-scoring span (start + end logit) of at most --max-answer-length tokens among the
--n-best-size best starts and ends of all its windows, cut from the original context through the
tokens' character offsets. Scored with the official v1.1 EM/F1. Writes predictions.json
(id -> answer), dev_metrics.json, the best parameters, and the best model exported as a symbol.

  python model_zoo/bert/finetune_squad.py --train-file ../shared/data/squad/train-v1.1-subset.json \
      --dev-file ../shared/data/squad/dev-v1.1-subset.json \
      --model bert_6_384_12 --dataset-name all_minilm_l6_v2 --output-dir out/squad
"""
import argparse
import json
import logging
import os
import shutil
import sys
import time

import mxnet as mx
import numpy as np

import gluonbert
from gluonbert.data import BERTTokenizer, SquadTransform, read_squad
from gluonbert.train import TrainConfig, TrainingLoop
from gluonbert.train import squad
from gluonbert.train.checkpoint import atomic_write_text

LOG = logging.getLogger('finetune_squad')


def build_parser():
    """The command line (GluonNLP 0.10's finetune_squad.py flags where they exist)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group('data')
    data.add_argument('--train-file', help='SQuAD v1.1 training JSON (not needed with '
                                           '--only-inference)')
    data.add_argument('--dev-file', required=True, help='SQuAD v1.1 dev JSON to predict and '
                                                        'score')
    data.add_argument('--max-train-samples', type=int, help='use only the first N training '
                                                            'questions')
    data.add_argument('--max-dev-samples', type=int, help='use only the first N dev questions')
    data.add_argument('--max-seq-length', type=int, default=384,
                      help='tokens per window, [CLS] question [SEP] context [SEP] (default 384)')
    data.add_argument('--doc-stride', type=int, default=128,
                      help='tokens between the starts of consecutive context windows '
                           '(default 128)')
    data.add_argument('--max-query-length', type=int, default=64,
                      help='questions are cut to this many tokens (default 64)')
    data.add_argument('--n-best-size', type=int, default=20,
                      help='best start and end positions per window considered (default 20)')
    data.add_argument('--max-answer-length', type=int, default=30,
                      help='longest answer in tokens (default 30)')
    model = p.add_argument_group('model')
    model.add_argument('--model', default='bert_12_768_12',
                       help='registered model name (default bert_12_768_12)')
    model.add_argument('--dataset-name', help='pretrained weights from the store, e.g. '
                                              'all_minilm_l6_v2, book_corpus_wiki_en_uncased')
    model.add_argument('--pretrained', help='checkpoint path: HuggingFace folder, Google TF '
                                            'checkpoint, GluonNLP .params or gluonbert folder')
    model.add_argument('--cased', action='store_true', help='cased vocabulary: do not '
                                                            'lowercase')
    model.add_argument('--dropout', type=float, default=0.1, help='encoder dropout (0.1)')
    train = p.add_argument_group('training')
    train.add_argument('--batch-size', type=int, default=32, help='windows per micro-batch '
                                                                  '(default 32)')
    train.add_argument('--accumulate', type=int, default=1, help='micro-batches per optimizer '
                                                                  'step (1)')
    train.add_argument('--lr', type=float, default=5e-5, help='peak learning rate (5e-5)')
    train.add_argument('--epochs', type=int, default=3, help='passes over the training '
                                                                'windows (3)')
    train.add_argument('--warmup-ratio', type=float, default=0.1,
                       help='share of the steps with linear warmup, then linear decay (0.1)')
    train.add_argument('--weight-decay', type=float, default=0.01, help='AdamW decay (0.01)')
    train.add_argument('--max-grad-norm', type=float, default=1.0,
                       help='clip the global gradient norm to this (1.0)')
    train.add_argument('--eval-every', type=int, help='evaluate on dev every N steps (default: '
                                                      'each epoch)')
    train.add_argument('--log-every', type=int, default=20, help='steps between loss logs (20)')
    train.add_argument('--gpus', default='', help='comma-separated GPU ids; empty: CPU')
    train.add_argument('--seed', type=int, default=2, help='seeds data order, head, dropout '
                                                               '(2)')
    train.add_argument('--output-dir', default='out/squad', help='where everything is written '
                                                                  '(out/squad)')
    train.add_argument('--resume', action='store_true', help='continue from the last '
                                                             'checkpoint in --output-dir')
    train.add_argument('--only-inference', action='store_true',
                       help='no training: load --params, predict and score the dev file')
    train.add_argument('--params', help='with --only-inference: parameters file (default '
                                        '<output-dir>/best.params)')
    train.add_argument('--no-progress', action='store_true', help='hide progress bars')
    return p


def contexts(gpus):
    """--gpus "0,1" -> [gpu(0), gpu(1)]; empty -> [cpu()]."""
    ids = [int(g) for g in gpus.split(',') if g.strip()]
    return [mx.gpu(i) for i in ids] or [mx.cpu()]


def build_net(args, ctx):
    """Backbone from the registry/store/checkpoint plus a fresh span head -> (net, vocab)."""
    pretrained = args.pretrained or (args.dataset_name is not None)
    bert, vocab = gluonbert.get_model(args.model, dataset_name=args.dataset_name,
                                      pretrained=pretrained, ctx=ctx, use_pooler=False,
                                      use_decoder=False, use_classifier=False,
                                      dropout=args.dropout)
    net = gluonbert.BERTForQA(bert)
    net.initialize_head(ctx=ctx)
    return net, vocab


def read_questions(path, limit, name):
    """SQuAD file -> its first `limit` questions (all when limit is None)."""
    examples = read_squad(path)
    if limit is not None:
        if limit < 1:
            raise SystemExit('--max-{}-samples must be >= 1; got {}'.format(name, limit))
        examples = examples[:limit]
    return examples


def main(argv=None):
    """Run the script; returns a dict with the dev EM/F1 and the output files."""
    args = build_parser().parse_args(argv)
    if not args.only_inference and not args.train_file:
        raise SystemExit('no training data: pass --train-file (or --only-inference)')
    os.makedirs(args.output_dir, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    ctx = contexts(args.gpus)
    progress = not args.no_progress
    net, vocab = build_net(args, ctx)
    tokenizer = BERTTokenizer(vocab, lower=not args.cased)

    def transform(is_training):
        return SquadTransform(tokenizer, args.max_seq_length, args.doc_stride,
                              args.max_query_length, is_training=is_training)

    dev_examples = read_questions(args.dev_file, args.max_dev_samples, 'dev')
    dev_transform = transform(False)
    dev = dev_transform.features(dev_examples)
    LOG.info('dev: %s', dev_transform.report())

    def evaluate(n):
        return squad.evaluate(n, dev_examples, dev, args.n_best_size, args.max_answer_length,
                              args.batch_size * 2, ctx[0], progress)

    best_seen = {}  # the best evaluation of this process: its predictions need no second pass

    def evaluate_during_training(n):
        metrics, predictions = evaluate(n)
        if not best_seen or metrics['f1'] > best_seen['metrics']['f1']:  # the loop's rule
            best_seen.update(metrics=metrics, predictions=predictions)
        return metrics

    net.hybridize(static_alloc=True)
    results = dict(task='squad1.1', model=args.model, dataset_name=args.dataset_name,
                   pretrained=args.pretrained, max_seq_length=args.max_seq_length,
                   doc_stride=args.doc_stride)
    if not args.only_inference:
        train_examples = read_questions(args.train_file, args.max_train_samples, 'train')
        train_transform = transform(True)
        train = train_transform.features(train_examples)
        LOG.info('train: %s', train_transform.report())
        batches, per_epoch = squad.training_batches(train, args.batch_size * len(ctx),
                                                    seed=args.seed)
        config = TrainConfig(lr=args.lr, epochs=args.epochs, warmup_ratio=args.warmup_ratio,
                             weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
                             accumulate=args.accumulate, log_every=args.log_every,
                             eval_every=args.eval_every, monitor='f1', seed=args.seed,
                             progress=progress)
        loop = TrainingLoop(net, squad.span_loss(), ctx, config, args.output_dir)
        start = time.time()
        state = loop.fit(batches, per_epoch, evaluate_during_training, resume=args.resume)
        results.update(train_seconds=round(time.time() - start, 1), steps=state['step'],
                       train_questions=len(train_examples), train_windows=len(train))
    params = args.params or os.path.join(args.output_dir, 'best.params')
    if not os.path.isfile(params):
        raise SystemExit('no parameters at {}: train first or pass --params'.format(params))
    net.load_parameters(params, ctx=ctx)
    if not args.only_inference and best_seen.get('metrics') == state['best_metrics']:
        dev_metrics, predictions = best_seen['metrics'], best_seen['predictions']
    else:  # only inference, or the best model was found before a --resume
        dev_metrics, predictions = evaluate(net)
    results.update(dev_metrics=dev_metrics, dev_questions=len(dev_examples),
                   dev_windows=len(dev))
    LOG.info('dev (%d questions): exact_match %.2f, f1 %.2f', len(dev_examples),
             dev_metrics['exact_match'], dev_metrics['f1'])
    results['predictions'] = os.path.join(args.output_dir, 'predictions.json')
    atomic_write_text(results['predictions'], json.dumps(predictions, indent=1,
                                                         ensure_ascii=False))
    results['export'] = _export(net, vocab, args, dev)
    atomic_write_text(os.path.join(args.output_dir, 'dev_metrics.json'),
                      json.dumps(results, indent=2))
    return results


def _export(net, vocab, args, dev):
    """Export the (best) model as a hybridized symbol, with its vocabulary and settings."""
    folder = os.path.join(args.output_dir, 'export')
    tmp = folder + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    gluonbert.export_model(net, os.path.join(tmp, 'model'), squad.batch_inputs(dev[:2]))
    vocab.to_file(os.path.join(tmp, 'vocab.txt'))
    with open(os.path.join(tmp, 'meta.json'), 'w') as f:
        json.dump(dict(task='squad1.1', model=args.model, lower=not args.cased,
                       max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                       max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                       max_answer_length=args.max_answer_length,
                       outputs=['start_logits', 'end_logits']), f, indent=2)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


if __name__ == '__main__':
    main(sys.argv[1:])
