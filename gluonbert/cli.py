"""The `gluonbert` command: predict with an exported classifier, embed sentences, convert
checkpoints, launch multi-worker training."""
import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Sequence

import mxnet as mx
import numpy as np

from .errors import UsageError, add_debug_flag, run_main
from .files import write_with
from .quantization import CALIB_MODES, CLASSIFIER_CALIB_MODE
from .train.script_args import (add_weights_arguments, check_weights_source, existing_dir,
                                 existing_file, existing_path, positive_int)


@contextlib.contextmanager
def _truncation_noted(fix):
    """Say on stderr, in command-line words, that texts were truncated (the library's warning
    points to .truncation.report(), a Python call); other warnings pass through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        yield
    for warning in caught:
        text = str(warning.message)
        if 'are being truncated' in text:
            print(f'gluonbert: note: {text.split(";")[0]}: their ends are not read ({fix})',
                  file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


def _predict_inputs(args, classifier):
    """The texts (or (text, text_pair) tuples) to predict, from the arguments, --input-file or
    standard input, checked against the model's kind (pair or single sentences)."""
    from .inference import read_text_table, split_tsv_lines
    pair = True if args.pair or args.text_pair else classifier.pair
    sources = [name for name, given in (('sentences as arguments', args.texts),
                                        ('--text', args.text), ('--input-file', args.input_file))
               if given]
    if len(sources) > 1:
        raise UsageError(f'give the inputs one way, not {" and ".join(sources)}')
    if args.text_pair and len(args.text_pair) != len(args.text or []):
        raise UsageError(f'{len(args.text or [])} --text but {len(args.text_pair)} --text-pair: '
                         'give one --text-pair after each --text')
    if args.text_columns and not args.input_file:
        raise UsageError('--text-columns names columns of --input-file')
    if args.input_file:
        names = args.text_columns.split(',') if args.text_columns else None
        texts = read_text_table(args.input_file, pair, names, classifier.meta.get('task'),
                                headerless_ok=True)
    elif args.text or args.texts:
        singles = args.text or args.texts
        texts = list(zip(singles, args.text_pair)) if args.text_pair else list(singles)
        if pair and not args.text_pair:
            raise UsageError(f'{classifier.folder} reads sentence pairs '
                             f'({classifier.meta.get("task") or "--pair"}): give --text A '
                             '--text-pair B, two tab-separated columns on standard input, or '
                             '--input-file x.tsv|x.csv with two text columns')
    else:
        texts = split_tsv_lines(sys.stdin, pair)
    if not texts:
        raise UsageError('no sentences: pass them as arguments, on standard input (one per line;'
                         ' pairs tab-separated) or with --input-file')
    if args.pair and texts and not isinstance(texts[0], tuple):
        raise UsageError('--pair needs two text columns: --text A --text-pair B, two '
                         'tab-separated columns on standard input, or --input-file with two '
                         'text columns')
    if args.pair and classifier.pair is False:
        raise UsageError(f'--pair, but {classifier.folder} is a single-sentence model '
                         f'({classifier.meta.get("task")}): give single sentences')
    classifier.check_inputs(texts)
    return texts


def _ranked(names, row, top_k):
    """[(label, score)] of one probability row, best first, the first `top_k`."""
    order = np.argsort(-row, kind='stable')[:top_k]
    return [(names[i], float(row[i])) for i in order]


def _predict(args):
    from .inference import SentenceClassifier
    classifier = SentenceClassifier(args.model_dir, precision=args.precision)
    regression = classifier.meta['regression']
    if regression and (args.top_k or args.all_scores):
        raise UsageError('--top-k and --all-scores apply to classifiers; this model is a '
                         'regression (one score per input)')
    texts = _predict_inputs(args, classifier)
    with _truncation_noted('the model was trained with this max_seq_length; split long texts'):
        probs = classifier.predict_proba(texts)
    names = classifier.label_names
    if not regression and not classifier.has_label_names:
        print(f'gluonbert: note: the model\'s labels have no names, so they print as '
              f'{", ".join(names)}: name them in {classifier.folder}/meta.json ("labels": '
              '["name0", ...]) or with save_pretrained(model, folder, labels=[...])',
              file=sys.stderr)
    top_k = len(names) if args.all_scores else (args.top_k or 1)
    results = []
    for text, row in zip(texts, probs):
        if regression:
            ranked = [(names[0] if classifier.has_label_names else 'score', float(row))]
        else:
            ranked = _ranked(names, row, top_k)
        pair = text if isinstance(text, tuple) else (text,)
        results.append(ranked[0][0])
        if args.json:
            record = dict(label=ranked[0][0], score=ranked[0][1], text=pair[0])
            if len(pair) == 2:
                record['text_pair'] = pair[1]
            if top_k > 1:
                record['scores'] = [dict(label=label, score=score) for label, score in ranked]
            print(json.dumps(record, ensure_ascii=False))
        else:
            places = 4 if regression else 3
            scores = '\t'.join(f'{label}\t{score:.{places}f}' for label, score in ranked)
            print('\t'.join([scores, *pair]))
    return results


def _quantize(args):
    from .inference import SentenceClassifier, read_text_table
    classifier = SentenceClassifier(args.model_dir)
    names = args.text_columns.split(',') if args.text_columns else None
    texts = read_text_table(args.calib_file, classifier.pair, names,
                            classifier.meta.get('task'))[:args.calib_samples]
    with _truncation_noted('calibration reads the first max_seq_length tokens of each text'):
        classifier.quantize(texts, calib_mode=args.calib_mode)
    classifier.save(args.output, overwrite=args.overwrite)
    kind = 'sentence pairs' if texts and isinstance(texts[0], tuple) else 'sentences'
    print(f'int8 model calibrated on {len(texts)} {kind} of {args.calib_file} written to '
          f'{args.output}')
    return args.output


def _embed(args):
    from .data import BERTTokenizer
    from .inference import embed, plot_similarity, similarity_table
    from .registry import get_model
    texts = args.texts or [line.rstrip('\n') for line in sys.stdin if line.strip()]
    if not texts:
        raise SystemExit('no sentences: pass them as arguments or on standard input')
    dataset_name = args.dataset_name
    if dataset_name is None and args.pretrained is None:
        dataset_name = 'all_minilm_l6_v2'  # the embedded default
    pretrained = args.pretrained or dataset_name is not None
    bert, vocab = get_model(args.model, dataset_name=dataset_name, pretrained=pretrained,
                            use_decoder=False, use_classifier=False, for_training=False)
    bert.hybridize(static_alloc=True)
    with _truncation_noted('raise --max-len, up to the model\'s max_length'):
        vectors = embed(bert, BERTTokenizer(vocab, lower=not args.cased), texts, args.max_len)
    if args.output:
        write_with(args.output, lambda temp: np.save(temp, vectors), suffix='.npy')
        print(f'wrote {vectors.shape[0]} embeddings of size {vectors.shape[1]} to {args.output}')
    if args.heatmap:
        plot_similarity(texts, vectors, args.heatmap)
        print(f'wrote the similarity heatmap to {args.heatmap}')
    if args.heatmap or not args.output:  # a file of embeddings alone may be large: no matrix
        print('cosine similarity:')
        print(similarity_table(texts, np.inner(vectors, vectors)))
    return vectors


def _export(args):
    from .export import export_model, sample_inputs
    from .registry import get_model
    if args.format != 'onnx' and (args.int8 or args.opset is not None or args.static):
        raise SystemExit('--int8, --opset and --static apply to --format onnx only')
    check_weights_source(args.parser, args)
    bert, _ = get_model(args.model, dataset_name=args.dataset_name,
                        pretrained=args.pretrained or args.dataset_name is not None,
                        use_decoder=False, use_classifier=False, for_training=False)
    if args.format == 'onnx':
        from .onnx_export import export_onnx
        path = export_onnx(bert, args.output, seq_len=args.seq_len, batch_size=args.batch_size,
                           opset=args.opset, dynamic=not args.static, int8=args.int8)
        print(f'wrote {path}')
        return [path]
    files = export_model(bert, args.output, sample_inputs(bert.config['vocab_size'],
                                                          args.batch_size, args.seq_len))
    print(f'wrote {files[0]} and {files[1]}')
    return list(files)


def build_parser() -> argparse.ArgumentParser:
    """argparse parser with the subcommands predict, quantize, embed, export, convert, launch."""
    parser = argparse.ArgumentParser(prog='gluonbert', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    predict = sub.add_parser(
        'predict', help='classify sentences or sentence pairs with an exported model folder',
        description='Classify sentences (or pairs) with a classifier folder. Inputs: sentences '
                    'as arguments; --text A --text-pair B (repeatable); --input-file x.tsv|x.csv'
                    ' (text columns found from the header, or --text-columns; a file of just the'
                    ' text column(s) needs no header); else standard input, one sentence per '
                    'line, a pair as two tab-separated columns. Output: label, score, text(s), '
                    'tab-separated, or --json.')
    predict.add_argument('--model-dir', required=True, type=existing_dir,
                         help='the export/ folder written by finetune_classifier.py, or a '
                              'save_pretrained folder (its export/ is used)')
    predict.add_argument('--precision', default='float32', choices=['float32', 'bfloat16'],
                         help='compute precision (bfloat16 needs an AVX-512 CPU; for int8 '
                              'write an int8 folder with `gluonbert quantize`)')
    predict.add_argument('--pair', action='store_true',
                         help='the inputs are sentence pairs (found from the folder for known '
                              'pair tasks such as MRPC)')
    predict.add_argument('--text', action='append', help='a sentence (repeatable)')
    predict.add_argument('--text-pair', action='append',
                         help='the second sentence of a pair: the Nth --text-pair goes with '
                              'the Nth --text (repeatable)')
    predict.add_argument('--input-file', type=existing_file,
                         help='.tsv or .csv of inputs (format from the extension)')
    predict.add_argument('--text-columns',
                         help='comma-separated text column name(s) of --input-file')
    predict.add_argument('--json', action='store_true',
                         help='one JSON object per input: label, score, text[, text_pair]')
    scores = predict.add_mutually_exclusive_group()
    scores.add_argument('--top-k', type=positive_int,
                        help='also show the K best labels with their scores')
    scores.add_argument('--all-scores', action='store_true',
                        help='show every label with its score')
    predict.add_argument('texts', nargs='*',
                         help='single sentences (default: standard input, see above)')
    predict.set_defaults(run=_predict)
    quant = sub.add_parser('quantize', help='calibrate an exported classifier on real '
                                            'sentences and write its int8 version')
    quant.add_argument('--model-dir', required=True, type=existing_dir,
                       help='the float32 export/ folder (or a save_pretrained folder)')
    quant.add_argument('--calib-file', required=True, type=existing_file,
                       help='TSV (or .csv) with a header, e.g. the task\'s train.tsv or dev.tsv')
    quant.add_argument('--text-columns',
                       help='comma-separated text column(s) of --calib-file (default: found '
                            'from the header: the task\'s columns, #1 String,#2 String, '
                            'sentence1,sentence2, sentence, text, ...)')
    quant.add_argument('--calib-samples', type=positive_int, default=512,
                       help='calibrate on the first N rows (default 512)')
    quant.add_argument('--calib-mode', choices=CALIB_MODES, default=CLASSIFIER_CALIB_MODE,
                       help='entropy (KL-divergence thresholds, the default: closer to float32 '
                            'accuracy) or naive (min/max of the calibration outputs)')
    quant.add_argument('--output', required=True, help='folder for the int8 export')
    quant.add_argument('--overwrite', action='store_true', help='replace --output if it exists')
    quant.set_defaults(run=_quantize)
    emb = sub.add_parser('embed', help='mean-pooled sentence embeddings: prints their cosine'
                                       '-similarity matrix; .npy and heatmap PNG on request')
    emb.add_argument('--model', default='bert_6_384_12')
    emb.add_argument('--dataset-name', help='pretrained weights from the store (default: '
                                            'all_minilm_l6_v2 unless --pretrained is given)')
    emb.add_argument('--pretrained', type=existing_path,
                     help='checkpoint path instead of --dataset-name')
    emb.add_argument('--cased', action='store_true')
    emb.add_argument('--max-len', type=positive_int, default=128)
    emb.add_argument('--output', help='save the (N, units) embeddings as .npy')
    emb.add_argument('--heatmap', help='save a cosine-similarity heatmap PNG')
    emb.add_argument('texts', nargs='*', help='sentences (default: one per stdin line)')
    emb.set_defaults(run=_embed)
    exp = sub.add_parser('export', help='export a model\'s encoder (and pooler) for deployment:'
                                        ' MXNet symbol + params (default) or ONNX')
    add_weights_arguments(exp, 'bert_6_384_12',
                          scratch_help='export random weights (a deployment dry run)')
    exp.add_argument('--output', required=True,
                     help='path prefix (mxnet: PREFIX-symbol.json, PREFIX-0000.params) or '
                          '.onnx file (onnx)')
    exp.add_argument('--format', default='mxnet', choices=['mxnet', 'onnx'])
    exp.add_argument('--seq-len', type=positive_int, default=128, help='sample sequence length')
    exp.add_argument('--batch-size', type=positive_int, default=1, help='sample batch size')
    exp.add_argument('--opset', type=int, help='onnx: ONNX opset, 12 or 13 (default 13)')
    exp.add_argument('--static', action='store_true',
                     help='onnx: fix batch size and sequence length to the sample\'s')
    exp.add_argument('--int8', action='store_true',
                     help='onnx: int8 weights (onnxruntime dynamic quantization)')
    exp.set_defaults(run=_export, parser=exp)
    for command in (predict, quant, emb, exp):
        add_debug_flag(command)
    conv = sub.add_parser('convert', help='convert a checkpoint (see scripts/convert_checkpoint.py'
                                          ' --help)', add_help=False)
    conv.set_defaults(run=None)
    launch = sub.add_parser('launch', help='start a multi-worker training cluster (see '
                                           'scripts/launch.py --help)', add_help=False)
    launch.set_defaults(run=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gluonbert` console script: runs `run(argv)`; an error ends as one line
    and exit code 2 (a mistake), 1 (a failure) or 130 (Ctrl-C); --debug shows the traceback."""
    return run_main(run, argv, prog='gluonbert')


def run(argv: Sequence[str] | None = None) -> int:
    """Run one `gluonbert` command; its errors are raised (`main` turns them into one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['convert']:
        from .convert_command import run as convert_run
        return convert_run(argv[1:])
    if argv[:1] == ['launch']:
        from .launcher import main as launch_main
        return launch_main(argv[1:])
    args = build_parser().parse_args(argv)
    mx.random.seed(0)
    args.run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
