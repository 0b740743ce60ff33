r"""Fine-tune BERT for extractive question answering on SQuAD v1.1 (BERTForQA).

Each question is turned into windows `[CLS] question [SEP] context window [SEP]` (--doc-stride
apart); the loss is the mean of the start and end softmax cross-entropies. A question's answer
is the best-scoring span (start + end logit) of at most --max-answer-length tokens among the
--n-best-size best starts and ends of all its windows, cut from the original context through the
tokens' character offsets. Scored with the official v1.1 EM/F1, reported as exact_match_percent
and f1_percent (0-100; every script's bare metric names are fractions in [0, 1]). Writes
predictions.json (id -> answer), dev_metrics.json, run_config.json, metrics.jsonl, the best
parameters, the best model exported as a symbol and as a save_pretrained folder (model/).
--resume and --only-inference need only --output-dir; --only-inference writes into
<output-dir>/inference-<time>/.

  python model_zoo/bert/finetune_squad.py --train-file ../shared/data/squad/train-v1.1-subset.json \
      --dev-file ../shared/data/squad/dev-v1.1-subset.json \
      --model bert_6_384_12 --dataset-name all_minilm_l6_v2 --output-dir out/squad

On several workers (each trains on its shard of the batches and scores the whole dev set; rank 0
writes the outputs):

  python scripts/launch.py --backend dist_sync -n 2 -- \
      python model_zoo/bert/finetune_squad.py --comm-backend dist_sync ...
"""
import argparse
import json
import logging
import os
import sys
import time

import gluonbert
from gluonbert.files import atomic_folder, write_json, write_text
from gluonbert.data import BERTTokenizer, SquadTransform, read_squad
from gluonbert.train import TrainingLoop
from gluonbert.train import distributed, squad
from gluonbert.errors import run_main
from gluonbert.train.checkpoint import load_parameters_file
from gluonbert.train.metrics_log import MetricsLog
from gluonbert.train.run_record import results_folder, write_run_config
from gluonbert.train.script_args import (add_inference_arguments, add_model_arguments,
                                         add_training_arguments, check_dtype,
                                         contexts, describe_run, existing_file,
                                         parse_script_args, positive_int, require_rows,
                                         show_progress, start_worker, train_config)

LOG = logging.getLogger('finetune_squad')
MONITOR = 'f1_percent'  # the dev metric that picks the best model


def build_parser():
    """The command line (GluonNLP 0.10's finetune_squad.py flags where they exist)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group('data')
    data.add_argument('--train-file', type=existing_file,
                      help='SQuAD v1.1 training JSON (not needed with --only-inference)')
    data.add_argument('--dev-file', type=existing_file, required=True,
                      help='SQuAD v1.1 dev JSON to predict and score')
    data.add_argument('--max-train-samples', type=positive_int,
                      help='use only the first N training questions')
    data.add_argument('--max-dev-samples', type=positive_int,
                      help='use only the first N dev questions')
    data.add_argument('--max-seq-length', type=positive_int, default=384,
                      help='tokens per window, [CLS] question [SEP] context [SEP] (default 384)')
    data.add_argument('--doc-stride', type=positive_int, default=128,
                      help='tokens between the starts of consecutive context windows (default 128)')
    data.add_argument('--max-query-length', type=positive_int, default=64,
                      help='questions are cut to this many tokens (default 64)')
    data.add_argument('--n-best-size', type=positive_int, default=20,
                      help='best start and end positions per window considered (default 20)')
    data.add_argument('--max-answer-length', type=positive_int, default=30,
                      help='longest answer in tokens (default 30)')
    add_model_arguments(p.add_argument_group('model'))
    train = p.add_argument_group('training')
    add_training_arguments(train, lr=5e-5, epochs=3, output_dir='out/squad',
                           batch_help='windows', epochs_help='passes over the training windows')
    add_inference_arguments(train, 'predict and score the dev file')
    return p


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
    examples = require_rows(read_squad(path), path)
    return examples[:limit] if limit is not None else examples


def main(argv=None):
    """Run the script; returns a dict with the dev EM/F1 and the output files."""
    args = parse_script_args(build_parser(), argv)  # the weights' flags are fixed on --resume
    backend = distributed.get_backend(args.comm_backend)  # joins the cluster, if any
    if not args.only_inference and not args.train_file:
        raise SystemExit('no training data: pass --train-file (or --only-inference)')
    ctx = contexts(args.gpus)
    check_dtype(args, ctx)
    start_worker(args, backend)  # the first write
    progress = show_progress(args) and backend.is_root
    net, vocab = build_net(args, ctx)
    tokenizer = BERTTokenizer(vocab, lower=not args.cased)

    # every input is read and checked before anything is trained
    train_examples = None if args.only_inference else \
        read_questions(args.train_file, args.max_train_samples, 'train')

    def transform(is_training):
        return SquadTransform(tokenizer, args.max_seq_length, args.doc_stride,
                              args.max_query_length, is_training=is_training)

    dev_examples = read_questions(args.dev_file, args.max_dev_samples, 'dev')
    dev_transform = transform(False)
    dev = dev_transform.features(dev_examples)
    LOG.info('dev: %s', dev_transform.report())

    def evaluate(n):
        scores, predictions = squad.evaluate(n, dev_examples, dev, args.n_best_size,
                                             args.max_answer_length, args.batch_size * 2,
                                             ctx[0], progress)
        return percent_names(scores), predictions

    # the best evaluation of this process: its predictions need no second pass. Every worker
    # scores the whole dev set: identical weights give identical metrics, so all agree on best
    best_seen = {}

    def evaluate_during_training(n):
        metrics, predictions = evaluate(n)
        if not best_seen or metrics[MONITOR] > best_seen['metrics'][MONITOR]:  # the loop's rule
            best_seen.update(metrics=metrics, predictions=predictions)
        return metrics

    out = args.output_dir
    run_record = dict(task='squad1.1', monitor=MONITOR)
    if backend.is_root and not args.only_inference:
        write_run_config(out, args, argv, run_record)
    net.hybridize(static_alloc=True)
    results = dict(task='squad1.1', model=args.model, dataset_name=args.dataset_name,
                   pretrained=args.pretrained, max_seq_length=args.max_seq_length,
                   doc_stride=args.doc_stride, output_dir=out,
                   hyperparameters=dict(seed=args.seed, lr=args.lr, epochs=args.epochs,
                                        batch_size=args.batch_size, accumulate=args.accumulate,
                                        max_seq_length=args.max_seq_length, dtype=args.dtype,
                                        warmup_ratio=args.warmup_ratio,
                                        weight_decay=args.weight_decay, dropout=args.dropout))
    if not args.only_inference:
        train_transform = transform(True)
        train = train_transform.features(train_examples)
        LOG.info('train: %s', train_transform.report())
        batches, per_epoch = distributed.shard_batches(
            *squad.training_batches(train, args.batch_size * len(ctx), seed=args.seed),
            backend.rank, backend.num_workers)
        LOG.info('%s', describe_run(backend, args, len(ctx), args.lr))
        loop = TrainingLoop(net, squad.span_loss(), ctx, train_config(args, monitor=MONITOR),
                            args.output_dir, model_record=dict(task='squad1.1'), backend=backend)
        start = time.time()
        state = loop.fit(batches, per_epoch, evaluate_during_training, resume=args.resume)
        results.update(train_seconds=round(time.time() - start, 1), steps=state['step'],
                       train_questions=len(train_examples), train_windows=len(train),
                       workers=backend.num_workers, comm_backend=args.comm_backend)
        if not backend.is_root:  # rank 0 predicts with the best model and exports
            return results
    params = args.params or os.path.join(args.output_dir, 'best.params')
    if not os.path.isfile(params):
        raise SystemExit(f'no parameters at {params}: train first or pass --params')
    load_parameters_file(net, params, ctx)
    if not args.only_inference and best_seen.get('metrics') == state['best_metrics']:
        dev_metrics, predictions = best_seen['metrics'], best_seen['predictions']
    else:  # only inference, or the best model was found before a --resume
        dev_metrics, predictions = evaluate(net)
    results.update(dev_metrics=dev_metrics, dev_questions=len(dev_examples),
                   dev_windows=len(dev))
    LOG.info('dev (%d questions): exact_match_percent %.2f, f1_percent %.2f',
             len(dev_examples), dev_metrics['exact_match_percent'], dev_metrics['f1_percent'])
    # an inference run writes beside the training record, never over it, into a folder made
    # only now (a run that fails on its parameters or data leaves none) and removed on failure
    with results_folder(args, argv, run_record, results) as out:
        MetricsLog(out).append(results.get('steps', 0), 'dev_final', dev_metrics)
        results['predictions'] = os.path.join(out, 'predictions.json')
        write_text(results['predictions'], json.dumps(predictions, indent=1,
                                                      ensure_ascii=False))
        if not args.only_inference:
            results['export'] = _export(net, vocab, args, dev)
            results['model_folder'] = os.path.join(args.output_dir, 'model')
            gluonbert.save_pretrained(net, results['model_folder'], vocab,
                                      max_length=args.max_seq_length, task='squad1.1',
                                      lower=not args.cased, overwrite=True)
        write_text(os.path.join(out, 'dev_metrics.json'), json.dumps(results, indent=2))
    return results


def percent_names(scores):
    """The official scores (0-100) under names that say so: exact_match_percent, f1_percent."""
    return {f'{name}_percent': value for name, value in scores.items()}


def _export(net, vocab, args, dev):
    """Export the (best) model as a hybridized symbol, with its vocabulary and settings."""
    folder = os.path.join(args.output_dir, 'export')
    with atomic_folder(folder, overwrite=True) as tmp:
        gluonbert.export_model(net, os.path.join(tmp, 'model'), squad.batch_inputs(dev[:2]))
        vocab.to_file(os.path.join(tmp, 'vocab.txt'))
        write_json(os.path.join(tmp, 'meta.json'),
                   dict(task='squad1.1', model=args.model, lower=not args.cased,
                        max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                        max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                        max_answer_length=args.max_answer_length,
                        outputs=['start_logits', 'end_logits']))
    return folder


if __name__ == '__main__':
    sys.exit(run_main(main))
