r"""Pretrain BERT with masked-LM + next-sentence prediction on raw text.

Input: text files with one sentence per line and documents separated by blank lines (Google's
create_pretraining_data.py format). A seeded share of the documents is held out; pairs and masks
are built as Google's script does (gluonbert.data.pretraining). The model is a registered shape
from scratch (with optional --num-layers/--units/... overrides) or continued from pretrained
weights (--dataset-name / --pretrained; heads the checkpoint lacks start fresh). Reports held-out
MLM and NSP accuracy before and after training; writes the loss curve (curves.png), the best
parameters, a gluonbert checkpoint folder (model/, loadable with --pretrained) and the model
exported as a symbol.

  python model_zoo/bert/pretrain.py --data 'corpus/*.txt' --model bert_2_128_2 --from-scratch \
      --max-steps 500 --output-dir out/pretrain

On several workers (each trains on its shard of the batches and scores the whole held-out part;
rank 0 writes the outputs):

  python scripts/launch.py --backend dist_sync -n 2 -- \
      python model_zoo/bert/pretrain.py --comm-backend dist_sync ...
"""
import argparse
import glob
import json
import logging
import os
import sys
import time

import gluonbert
from gluonbert.files import atomic_folder, write_text
from gluonbert.convert.native import save_native_checkpoint
from gluonbert.data import BERTTokenizer, PretrainingExampleBuilder, read_documents
from gluonbert.data import train_test_split
from gluonbert.train import TrainingLoop
from gluonbert.train import distributed, pretraining
from gluonbert.errors import UsageError, run_main
from gluonbert.train.checkpoint import load_parameters_file
from gluonbert.train.metrics_log import MetricsLog
from gluonbert.train.run_record import write_run_config
from gluonbert.train.script_args import (WEIGHTS_FLAGS, add_model_arguments,
                                         add_training_arguments, check_dtype, contexts,
                                         describe_run, fraction, parse_script_args,
                                         positive_float, positive_int, show_progress,
                                         start_worker, train_config)

LOG = logging.getLogger('pretrain')
ARCHITECTURE_FLAGS = ('num_layers', 'units', 'num_heads', 'hidden_size', 'max_length')


def build_parser():
    """The command line (GluonNLP 0.10's run_pretraining.py / create_pretraining_data.py flags
    where they exist)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group('data')
    data.add_argument('--data', nargs='+', required=True,
                      help='text files or globs (quote them): one sentence per line, blank lines '
                           'between documents')
    data.add_argument('--held-out-fraction', type=positive_float, default=0.05,
                      help='share (or number, if >= 1) of documents held out to score MLM/NSP '
                           '(default 0.05)')
    data.add_argument('--max-seq-length', type=positive_int, default=128,
                      help='tokens per pair (128)')
    data.add_argument('--max-predictions-per-seq', type=positive_int, default=20,
                      help='most masked positions per sequence (20)')
    data.add_argument('--masked-lm-prob', type=fraction, default=0.15,
                      help='share of the tokens to predict (0.15)')
    data.add_argument('--short-seq-prob', type=fraction, default=0.1,
                      help='probability of a shorter target length (0.1)')
    data.add_argument('--whole-word-masking', action='store_true',
                      help='mask all word pieces of a word together')
    data.add_argument('--dupe-factor', type=positive_int, default=1,
                      help='passes over the corpus with different masks and pairs (1)')
    model = p.add_argument_group('model')
    add_model_arguments(model, default_model='bert_2_128_2')
    for flag in ARCHITECTURE_FLAGS:
        model.add_argument('--' + flag.replace('_', '-'), type=positive_int,
                           help=f'override the model\'s {flag} (from scratch)')
    train = p.add_argument_group('training')
    add_training_arguments(train, lr=1e-4, epochs=1, output_dir='out/pretrain',
                           batch_help='sequences',
                           epochs_help='passes over the examples; ignored with --max-steps')
    train.add_argument('--max-steps', type=positive_int,
                       help='train for exactly this many optimizer '
                            'steps (on every worker), cycling through '
                            'the examples; the schedule spans them')
    return p


def data_files(patterns):
    """Paths and globs -> sorted list of existing files; none is an error."""
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) or ([pattern] if os.path.isfile(pattern) else [])
        if not matched:
            raise SystemExit(f'--data {pattern}: no such file (quote a glob so the script '
                             'expands it)')
        files.extend(matched)
    return files


def build_model(args, ctx):
    """BERTModel with pooler, NSP classifier and MLM decoder -> (model, vocab)."""
    overrides = {k: getattr(args, k) for k in ARCHITECTURE_FLAGS if getattr(args, k)}
    pretrained = args.pretrained or (args.dataset_name is not None)
    heads = None if pretrained else True  # a checkpoint keeps the heads it has
    bert, vocab = gluonbert.get_model(args.model, dataset_name=args.dataset_name,
                                      pretrained=pretrained, ctx=ctx, use_pooler=heads,
                                      use_decoder=heads, use_classifier=heads,
                                      dropout=args.dropout, hparam_allow_override=True,
                                      **overrides)
    model, fresh = pretraining.with_pretraining_heads(bert, ctx)
    if fresh:
        LOG.info('the checkpoint has no %s: initialized at random', ', '.join(fresh))
    return model, vocab


def make_examples(args, tokenizer):
    """Corpus -> (training examples, held-out examples), documents split before pairing."""
    files = data_files(args.data)
    documents = read_documents(files)
    if not documents:
        raise UsageError(f'--data {" ".join(files)}: no documents (the files hold no text)')
    LOG.info('%d documents, %d sentences', len(documents), sum(len(d) for d in documents))
    held_out = args.held_out_fraction
    held_out = int(held_out) if held_out >= 1 else held_out
    try:
        train_docs, held_docs = train_test_split(documents, held_out, seed=args.seed)
    except ValueError as err:
        raise SystemExit(f'cannot hold out documents: {err}') from None
    parts = []
    for name, docs, seed in (('train', train_docs, args.seed), ('held-out', held_docs,
                                                                args.seed + 1)):
        builder = PretrainingExampleBuilder(
            tokenizer, args.max_seq_length, args.masked_lm_prob, args.max_predictions_per_seq,
            args.short_seq_prob, args.whole_word_masking, args.dupe_factor, seed=seed)
        try:
            parts.append(builder.build(list(docs)))
        except ValueError as err:
            raise SystemExit(f'{name} part: {err}') from None
        LOG.info('%s (%d documents): %s', name, len(docs), builder.report())
    return parts


def main(argv=None):
    """Run the script; returns a dict with the held-out scores and the output files."""
    parser = build_parser()
    # --max-steps sizes the one pass over the example stream: a resume cannot change it
    args = parse_script_args(parser, argv, WEIGHTS_FLAGS + ARCHITECTURE_FLAGS + ('max_steps',))
    try:
        data_files(args.data)  # before anything is built or written
    except SystemExit as err:
        parser.error(str(err.code))
    backend = distributed.get_backend(args.comm_backend)  # joins the cluster, if any
    ctx = contexts(args.gpus)
    check_dtype(args, ctx)
    start_worker(args, backend)  # the first write
    progress = show_progress(args) and backend.is_root
    net, vocab = build_model(args, ctx)
    tokenizer = BERTTokenizer(vocab, lower=not args.cased)
    train, held_out = make_examples(args, tokenizer)
    if backend.is_root:
        write_run_config(args.output_dir, args, argv, dict(config=dict(build_config(net))))
    net.hybridize(static_alloc=True)

    def evaluate(n):  # every worker scores all of held_out: identical weights, identical scores
        return pretraining.evaluate(n, held_out, args.batch_size * 2, ctx[0], progress)

    before = None
    if backend.is_root:  # the other workers return right after training
        before = evaluate(net)
        LOG.info('held-out before training: %s', _format(before))
    workers, steps = backend.num_workers, args.max_steps
    # --max-steps: every worker's shard of the stream holds steps x accumulate batches
    batches, per_epoch = distributed.shard_batches(*pretraining.training_batches(
        train, args.batch_size * len(ctx), seed=args.seed,
        batches_per_epoch=steps * args.accumulate * workers if steps else None),
        backend.rank, workers)
    LOG.info('%s', describe_run(backend, args, len(ctx), args.lr))
    config = train_config(args, epochs=1 if steps else args.epochs, monitor='mlm_loss',
                          mode='min')
    loop = TrainingLoop(net, pretraining.pretraining_loss(), ctx, config, args.output_dir,
                        model_record=dict(task='pretraining'), backend=backend)
    start = time.time()
    state = loop.fit(batches, per_epoch, evaluate, resume=args.resume)
    results = dict(model=args.model, dataset_name=args.dataset_name, pretrained=args.pretrained,
                   steps=state['step'], train_seconds=round(time.time() - start, 1),
                   workers=workers, comm_backend=args.comm_backend)
    if not backend.is_root:  # rank 0 scores the best model and writes everything
        return results
    load_parameters_file(net, os.path.join(args.output_dir, 'best.params'), ctx)
    # the loop scored best.params on the held-out part already
    after = ({k: v for k, v in state['best_metrics'].items() if not k.startswith('raw_')}
             if state['best_metrics'] else evaluate(net))
    LOG.info('held-out after training (best by MLM loss, step %s): %s',
             _best_step(state), _format(after))
    losses = [h['loss'] for h in state['history'] if 'loss' in h]
    results.update(config=net.config.to_dict(), train_examples=len(train),
                   held_out_examples=len(held_out),
                   first_logged_loss=losses[0] if losses else None,
                   last_logged_loss=losses[-1] if losses else None,
                   held_out_before=before, held_out=after)
    results['checkpoint'] = os.path.join(args.output_dir, 'model')
    save_native_checkpoint(net, vocab, results['checkpoint'], overwrite=True)
    results['export'] = _export(net, held_out, args.output_dir)
    results['hyperparameters'] = dict(
        seed=args.seed, lr=args.lr, epochs=args.epochs, max_steps=args.max_steps,
        batch_size=args.batch_size, accumulate=args.accumulate,
        max_seq_length=args.max_seq_length, dtype=args.dtype, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, dropout=args.dropout)
    MetricsLog(args.output_dir).append(state['step'], 'held_out_final', after)
    write_text(os.path.join(args.output_dir, 'pretrain_metrics.json'),
                      json.dumps(results, indent=2))
    return results


def build_config(net):
    """The architecture the run trains (JSON-able)."""
    return {k: v for k, v in net.config.items() if isinstance(v, (str, int, float, bool))}


def _format(scores):
    return ', '.join(f'{k} {v:.4f}' for k, v in scores.items())


def _best_step(state):
    for entry in state['history']:
        if entry.get('eval') == state['best_metrics']:
            return entry['step']
    return '?'


def _export(net, examples, output_dir):
    """Export as a symbol with inputs (input_ids, token_types, valid_length, masked_positions)."""
    folder = os.path.join(output_dir, 'export')
    with atomic_folder(folder, overwrite=True) as tmp:
        gluonbert.export_model(net, os.path.join(tmp, 'model'),
                               pretraining.batch_examples(examples[:2])[:4])
    return folder


if __name__ == '__main__':
    sys.exit(run_main(main))
