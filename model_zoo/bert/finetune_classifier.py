"""Fine-tune BERT for sentence(-pair) classification or regression.

Tasks: SST-2, MRPC, CoLA, STS-B (regression), SNLI (jsonl), IMDB (`review,sentiment` CSV), or any
CSV/TSV/JSONL with your own columns (--task custom). A file's format comes from its extension
(.csv, .tsv, .jsonl). A file with a `text` (or `sentence`) column, optionally a second text
(`text_pair`, `text_b`, `sentence2`) and a `label` column needs no --task: the labels are its
sorted distinct values, or real-valued targets (regression) when every label is a number and one
is written with a decimal point (integer labels are classes; --regression forces regression).
Without a dev file, --dev-fraction of the training file is held out. Writes dev metrics (JSON),
test predictions, the best parameters, the best model exported as a hybridized symbol and as a
`save_pretrained` folder (`model/`, which HuggingFace's pipeline also loads). Every run writes
run_config.json (its full configuration and versions) and metrics.jsonl; --resume and
--only-inference need only --output-dir (--only-inference writes into
<output-dir>/inference-<time>/); a used --output-dir is refused without --resume or
--overwrite-output-dir.

  python model_zoo/bert/finetune_classifier.py --train-file reviews.csv \
      --model bert_6_384_12 --dataset-name all_minilm_l6_v2
  python model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir ../shared/data/glue/SST-2 \
      --model bert_6_384_12 --dataset-name all_minilm_l6_v2 --output-dir out/sst2

The weights come from --dataset-name, --pretrained, or (random) --from-scratch.

On several workers (each takes its shard of the batches; rank 0 writes the outputs):

  python scripts/launch.py --backend dist_sync -n 2 -- \
      python model_zoo/bert/finetune_classifier.py --comm-backend dist_sync ...
"""
import argparse
import json
import logging
import os
import sys
import time

import mxnet as mx

import gluonbert
from gluonbert.data import (FILE_FORMATS, BERTTokenizer, ReaderError, Task, file_format_of,
                            get_task, infer_task, read_csv, read_jsonl, read_tsv, task_metrics,
                            train_test_split)
from gluonbert.files import atomic_folder, atomic_open, write_json, write_text
from gluonbert.train import TrainingLoop
from gluonbert.train import classification as cls
from gluonbert.train import distributed
from gluonbert.errors import CheckpointMismatchError, run_main
from gluonbert.train.checkpoint import load_parameters_file
from gluonbert.train.losses import balanced_class_weights
from gluonbert.train.metrics_log import MetricsLog
from gluonbert.train.run_record import results_folder, write_run_config
from gluonbert.train.script_args import (WEIGHTS_FLAGS, add_inference_arguments,
                                         add_model_arguments, add_training_arguments,
                                         check_dtype, contexts,
                                         describe_run, existing_dir, existing_file,
                                         parse_script_args, positive_float, positive_int,
                                         require_rows, show_progress, start_worker,
                                         train_config)

LOG = logging.getLogger('finetune_classifier')


def build_parser():
    """The command line (GluonNLP 0.10's finetune_classifier.py flags where they exist)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group('data')
    data.add_argument('--task',
                      help='sst-2, mrpc, cola, sts-b, snli, imdb, or custom (default: read off '
                           'the training file\'s text/sentence and label columns)')
    data.add_argument('--data-dir', type=existing_dir,
                      help='folder with train/dev/test files (GLUE layout: '
                           'train.tsv, dev.tsv, test.tsv)')
    data.add_argument('--train-file', type=existing_file,
                      help='training file (overrides --data-dir)')
    data.add_argument('--dev-file', type=existing_file,
                      help='dev file; without one, --dev-fraction of the training file is held out')
    data.add_argument('--test-file', type=existing_file, help='unlabeled test file to predict')
    data.add_argument('--dev-fraction', type=positive_float, default=0.1,
                      help='held-out share (< 1) or number of samples (>= 1) when there is no '
                           'dev file (default 0.1)')
    data.add_argument('--text-columns', help='custom task: one or two comma-separated text '
                                             'columns, e.g. "text" or "text,text_b"')
    data.add_argument('--label-column', default='label', help='custom task: label column')
    data.add_argument('--labels', help='custom task: comma-separated label set (default: the '
                                       'sorted labels of the training file)')
    data.add_argument('--regression', action='store_true',
                      help='custom task or no --task: float targets (default without --task: '
                           'when every label is a number and one has a decimal point)')
    data.add_argument('--file-format', default=None, choices=list(FILE_FORMATS),
                      help='file format (default: from the file extension)')
    data.add_argument('--max-train-samples', type=positive_int,
                      help='use only the first N training samples')
    data.add_argument('--max-len', type=positive_int, default=128, help='max tokens per example '
                                                               '(default 128)')
    data.add_argument('--window-stride', type=positive_int,
                      help='split long single texts into sliding '
                           'windows with this stride instead of '
                           'truncating; logits are averaged')
    model = p.add_argument_group('model')
    add_model_arguments(model)
    model.add_argument('--pooling', default='cls', choices=['cls', 'mean'],
                       help='sentence vector for the head: cls (the pooler on [CLS], as BERT '
                            'and GluonNLP) or mean (of the valid tokens, as sentence-transformers '
                            'checkpoints such as all_minilm_l6_v2 were trained; no pooler). '
                            'Default cls')
    train = p.add_argument_group('training')
    add_training_arguments(train, lr=5e-5, epochs=3, output_dir='out/finetune',
                           batch_help='examples', epochs_help='passes over the training data')
    train.add_argument('--class-weights', help='"balanced" or comma-separated weights per class')
    train.add_argument('--monitor', help='dev metric that picks the best model and drives '
                                         '--early-stop (default: the task\'s first metric, '
                                         'e.g. accuracy; f1 for MRPC-style scoring)')
    train.add_argument('--early-stop', type=positive_int, help='stop after N evaluations without a '
                                                      'better dev metric')
    train.add_argument('--lr-scaling', default='none', choices=['none', 'linear'],
                       help='--lr is for the global batch (batch size x contexts x workers); '
                            'linear: multiply it by the number of workers (default none)')
    add_inference_arguments(train, 'evaluate dev and predict test')
    return p


def make_task(args, train_path):
    """The Task named by --task, a custom one from the column flags, or one read off the
    training file's columns; files are read in the format of their extension."""
    if (args.task and args.task.lower() == 'custom') or (not args.task and args.text_columns):
        return _custom_task(args, train_path)
    try:
        if args.task:
            return get_task(args.task).for_file(train_path, args.file_format)
        task = infer_task(train_path, args.file_format, args.label_column, args.regression)
    except ReaderError:
        raise
    except ValueError as err:
        raise SystemExit(str(err)) from None
    LOG.info('task from the columns of %s: texts %s, label %r, %s', train_path,
             list(task.text_fields), task.label_field,
             'regression' if task.is_regression else f'labels {task.labels}')
    return task


def _custom_task(args, train_path):
    """--task custom: the columns named by --text-columns / --label-column."""
    if not args.text_columns:
        raise SystemExit('--task custom needs --text-columns (e.g. "text" or "text,text_b")')
    try:
        fmt = file_format_of(train_path, args.file_format)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    fields = args.text_columns.split(',')
    if args.regression:
        labels = None
    elif args.labels:
        labels = args.labels.split(',')
    else:  # the label set is what the training file holds
        reader = dict(tsv=read_tsv, csv=read_csv, jsonl=read_jsonl)[fmt]
        labels = sorted({s[-1] for s in require_rows(
            reader(train_path, fields, args.label_column), train_path)})
        LOG.info('label set from %s: %s', train_path, labels)
    return Task('custom', fields, args.label_column, labels, task_metrics(labels),
                file_format=fmt)


def data_paths(args):
    """(train, dev, test) paths from --data-dir and the per-file flags."""
    def pick(explicit, name):
        if explicit:
            return explicit
        if args.data_dir:
            for ext in ('tsv', 'csv', 'jsonl'):
                path = os.path.join(args.data_dir, f'{name}.{ext}')
                if os.path.isfile(path):
                    return path
        return None
    train = pick(args.train_file, 'train')
    if train is None and not args.only_inference:
        raise SystemExit('no training data: pass --train-file or --data-dir with a train file')
    return train, pick(args.dev_file, 'dev'), pick(args.test_file, 'test')


def build_net(args, task, ctx):
    """Backbone from the registry/store/checkpoint plus a fresh task head -> (net, vocab)."""
    pretrained = args.pretrained or (args.dataset_name is not None)
    bert, vocab = gluonbert.get_model(args.model, dataset_name=args.dataset_name,
                                      pretrained=pretrained, ctx=ctx,
                                      use_pooler=args.pooling == 'cls',
                                      use_decoder=False, use_classifier=False,
                                      dropout=args.dropout)
    if task.is_regression:
        net = gluonbert.BERTRegression(bert, dropout=args.dropout, pooling=args.pooling)
    else:
        net = gluonbert.BERTClassifier(bert, num_classes=task.num_classes, dropout=args.dropout,
                                       pooling=args.pooling)
    net.initialize_head(ctx=ctx)
    return net, vocab


# flags a --resume / --only-inference run must not change: they fix the model and its labels
FIXED_FLAGS = WEIGHTS_FLAGS + ('task', 'text_columns', 'label_column', 'labels', 'regression',
                               'pooling', 'file_format')


def main(argv=None):
    """Run the script; returns a dict with the dev metrics and the output files."""
    args = parse_script_args(build_parser(), argv, FIXED_FLAGS)
    backend = distributed.get_backend(args.comm_backend)  # joins the cluster, if any
    ctx = contexts(args.gpus)
    check_dtype(args, ctx)
    start_worker(args, backend)  # the first write
    progress = show_progress(args)
    train_path, dev_path, test_path = data_paths(args)
    task = _saved_task(args) or make_task(args, train_path or dev_path)
    monitor = _monitor(args, task)
    net, vocab = build_net(args, task, ctx)
    tokenizer = BERTTokenizer(vocab, lower=not args.cased)

    # every input is read and checked before anything is trained
    train_set = _read(task, train_path, args) if train_path else None
    if train_set is not None and args.max_train_samples:
        train_set = train_set[:args.max_train_samples]
    test_set = _read(task, test_path, args, labeled=False) if test_path else None
    if dev_path:
        dev_set = _read(task, dev_path, args)
    elif train_set is not None:  # the same seed holds out the same samples on every run
        train_set, dev_set = train_test_split(train_set, args.dev_fraction, seed=args.seed)
        LOG.info('no dev file: holding out %d of the training samples', len(dev_set))
    else:
        raise SystemExit('--only-inference needs a dev file to evaluate')
    dev = _features(task, dev_set, tokenizer, args, progress, 'dev')

    out = args.output_dir
    run_record = dict(task=task.to_dict(), monitor=monitor)
    if backend.is_root and not args.only_inference:
        write_run_config(out, args, argv, run_record)

    net.hybridize(static_alloc=True)
    results = dict(task=task.name, labels=task.labels, model=args.model,
                   dataset_name=args.dataset_name, pretrained=args.pretrained,
                   pooling=args.pooling, hyperparameters=_hyperparameters(args),
                   output_dir=out)
    best_metrics = None
    if not args.only_inference:
        train = _features(task, train_set, tokenizer, args, progress, 'train')
        weights = None
        if args.class_weights == 'balanced':
            weights = balanced_class_weights([f.label for f in train], task.num_classes)
        elif args.class_weights:
            weights = [float(w) for w in args.class_weights.split(',')]
        workers = backend.num_workers
        batches, per_epoch = cls.training_batches(task, train, args.batch_size * len(ctx),
                                                  seed=args.seed, num_shards=workers,
                                                  shard_index=backend.rank)
        lr = args.lr * workers if args.lr_scaling == 'linear' else args.lr
        LOG.info('%s', describe_run(backend, args, len(ctx), lr))
        config = train_config(args, lr=lr, early_stop=args.early_stop, monitor=monitor)
        loop = TrainingLoop(net, cls.task_loss(task, weights), ctx, config, args.output_dir,
                            model_record=dict(task=task.name, labels=task.labels),
                            backend=backend)
        start = time.time()
        state = loop.fit(batches, per_epoch, lambda n: cls.evaluate(
            n, task, dev, args.batch_size * 2, ctx[0], progress, backend), resume=args.resume)
        results.update(train_seconds=round(time.time() - start, 1), steps=state['step'],
                       train_samples=len(train), stopped=state['stopped'], workers=workers,
                       comm_backend=args.comm_backend)
        results['hyperparameters']['lr'] = lr
        if not backend.is_root:  # rank 0 predicts with the best model and exports
            return results
        best_metrics = state['best_metrics']
    _load_parameters(net, args.params or os.path.join(args.output_dir, 'best.params'), ctx,
                     args.pooling)
    if best_metrics:  # the loop scored best.params on this dev set already
        dev_metrics = {k: v for k, v in best_metrics.items() if not k.startswith('raw_')}
    else:
        dev_metrics = cls.evaluate(net, task, dev, args.batch_size * 2, ctx[0], progress)
    results.update(dev_metrics=dev_metrics, dev_samples=len(dev_set))
    LOG.info('dev (%d samples): %s', len(dev_set),
             ', '.join(f'{k} {v:.4f}' for k, v in dev_metrics.items()))
    # an inference run writes beside the training record, never over it, into a folder made
    # only now (a run that fails on its parameters or data leaves none) and removed on failure
    with results_folder(args, argv, run_record, results) as out:
        MetricsLog(out).append(results.get('steps', 0), 'dev_final', dev_metrics)
        if test_set is not None:
            results['test_predictions'] = _predict_test(net, task, test_set, tokenizer, args,
                                                        ctx, out)
        if not args.only_inference:
            results['export'] = _export(net, vocab, task, args, dev)
            results['model_folder'] = _save_model_folder(net, vocab, task, args)
        write_text(os.path.join(out, 'dev_metrics.json'), json.dumps(results, indent=2))
    return results


def _saved_task(args):
    """The task a --resume / --only-inference run's run_config.json resolved (its labels in
    their order), or None."""
    record = (args.saved_run or {}).get('resolved', {}).get('task')
    return Task.from_dict(record) if record else None


def _hyperparameters(args):
    """The settings dev_metrics.json repeats beside the scores."""
    return dict(seed=args.seed, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                accumulate=args.accumulate, max_len=args.max_len, dtype=args.dtype,
                warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                dropout=args.dropout, ema_decay=args.ema_decay)


def _save_model_folder(net, vocab, task, args):
    """The run's result: the best weights with their label names as one save_pretrained
    folder (`<output-dir>/model/`, which HuggingFace's pipeline also loads)."""
    folder = os.path.join(args.output_dir, 'model')
    labels = [str(label) for label in task.labels] if task.labels is not None else None
    gluonbert.save_pretrained(net, folder, vocab, labels=labels,
                              max_length=min(args.max_len, net.bert.config['max_length']),
                              task=task.name, lower=not args.cased, overwrite=True)
    LOG.info('model folder (save_pretrained): %s', folder)
    return folder


def _read(task, path, args, labeled=True):
    """A data file's samples, read in the format of its extension (or --file-format)."""
    try:
        reader = task.for_file(path, args.file_format)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return require_rows(reader.read(path, labeled=labeled), path)


def _load_parameters(net, path, ctx, pooling):
    """Load the trained parameters; a file trained with the other --pooling is named as such."""
    try:
        load_parameters_file(net, path, ctx, 'parameters file')
    except FileNotFoundError:
        raise SystemExit(f'no parameters at {path}: train first, or pass --params') from None
    except CheckpointMismatchError:
        # only now read the file's names (the good path reads it once): is the pooler the cause?
        has_pooler = any(name.startswith('bert.pooler.') for name in mx.nd.load(path))
        if has_pooler == net.uses_pooler:
            raise
        trained = 'cls' if has_pooler else 'mean'
        raise SystemExit('{} does not fit a head with --pooling {}: it was trained with '
                         '--pooling {} ({} pooler weights); rerun with --pooling {}'.format(
                             path, pooling, trained, 'it has' if has_pooler else 'no',
                             trained)) from None


def _monitor(args, task):
    """--monitor checked against the task's metrics (default: the first of them)."""
    if args.monitor is None:
        return task.metric_names[0]
    if args.monitor not in task.metric_names:
        raise SystemExit('--monitor {}: task {} reports {}'.format(
            args.monitor, task.name, ', '.join(task.metric_names)))
    return args.monitor


def _features(task, dataset, tokenizer, args, progress, name):
    features, report = cls.make_features(task, dataset, tokenizer, args.max_len,
                                         window_stride=args.window_stride, progress=progress)
    LOG.info('%s: %s', name, report)
    return features


def _predict_test(net, task, test_set, tokenizer, args, ctx, folder):
    features, report = cls.make_features(task, test_set,
                                         tokenizer, args.max_len, labeled=False,
                                         window_stride=args.window_stride,
                                         progress=show_progress(args))
    LOG.info('test: %s', report)
    outputs, _ = cls.aggregate_windows(cls.predict(net, features, args.batch_size * 2, ctx[0],
                                                   show_progress(args)), features)
    out = os.path.join(folder, 'test_predictions.tsv')
    with atomic_open(out) as f:
        f.write('index\tprediction\n')
        for i, row in enumerate(outputs):
            value = f'{row[0]:.6f}' if task.is_regression else \
                task.labels[int(row.argmax())]
            f.write(f'{i}\t{value}\n')
    return out


def _export(net, vocab, task, args, dev):
    """Export the (best) model as a hybridized symbol with what `predict.py` needs beside it."""
    folder = os.path.join(args.output_dir, 'export')
    sample = gluonbert.data.batchify.bert_inputs()([f[:3] for f in dev[:2]])
    with atomic_folder(folder, overwrite=True) as tmp:
        gluonbert.export_model(net, os.path.join(tmp, 'model'), sample)
        vocab.to_file(os.path.join(tmp, 'vocab.txt'))
        write_json(os.path.join(tmp, 'meta.json'),
                   dict(task=task.name, labels=task.labels, regression=task.is_regression,
                        pair=task.is_pair,
                        max_len=args.max_len, lower=not args.cased, model=args.model))
    return folder


if __name__ == '__main__':
    sys.exit(run_main(main))
