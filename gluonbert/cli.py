"""The `gluonbert` command: predict with an exported classifier, embed sentences, convert
checkpoints, launch multi-worker training."""
import argparse
import contextlib
import sys
import warnings

import mxnet as mx

from .errors import add_debug_flag, run_main
from .train.script_args import (check_weights_source, existing_dir, existing_file,
                                 existing_path, positive_int)


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


def _predict(args):
    from .inference import SentenceClassifier  # pylint: disable=import-outside-toplevel
    classifier = SentenceClassifier(args.model_dir, precision=args.precision)
    texts = args.texts or [line.rstrip('\n') for line in sys.stdin if line.strip()]
    if not texts:
        raise SystemExit('no sentences: pass them as arguments or on standard input')
    with _truncation_noted('the model was trained with this max_seq_length; split long texts'):
        probs = classifier.predict_proba(texts)
    labels = classifier.labels_of(probs)
    for text, label, p in zip(texts, labels, probs):
        score = '{:.4f}'.format(float(p)) if classifier.meta['regression'] else \
            '{:.3f}'.format(float(p.max()))
        print('{}\t{}\t{}'.format(label, score, text))
    return labels


def _quantize(args):
    from .data import read_table  # pylint: disable=import-outside-toplevel
    from .inference import SentenceClassifier  # pylint: disable=import-outside-toplevel
    classifier = SentenceClassifier(args.model_dir)
    delimiter = ',' if args.calib_file.endswith('.csv') else '\t'
    rows = read_table(args.calib_file, args.text_columns.split(','), delimiter=delimiter)
    texts = [row[0] if len(row) == 1 else tuple(row) for row in rows][:args.calib_samples]
    classifier.quantize(texts)
    classifier.save(args.output, overwrite=args.overwrite)
    print('int8 model calibrated on {} sentences of {} written to {}'.format(
        len(texts), args.calib_file, args.output))
    return args.output


def _embed(args):
    import numpy as np  # pylint: disable=import-outside-toplevel
    from .data import BERTTokenizer  # pylint: disable=import-outside-toplevel
    from .inference import embed, plot_similarity  # pylint: disable=import-outside-toplevel
    from .registry import get_model  # pylint: disable=import-outside-toplevel
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
        np.save(args.output, vectors)
        print('wrote {} embeddings of size {} to {}'.format(*vectors.shape, args.output))
    if args.heatmap:
        sims = plot_similarity(texts, vectors, args.heatmap)
        print('wrote the similarity heatmap to {}'.format(args.heatmap))
        for text, row in zip(texts, sims):
            print('  '.join('{:.2f}'.format(v) for v in row), ' ', text[:60])
    return vectors


def _export(args):
    from .export import export_model, sample_inputs  # pylint: disable=import-outside-toplevel
    from .registry import get_model  # pylint: disable=import-outside-toplevel
    if args.format != 'onnx' and (args.int8 or args.opset is not None or args.static):
        raise SystemExit('--int8, --opset and --static apply to --format onnx only')
    check_weights_source(args.parser, args)
    bert, _ = get_model(args.model, dataset_name=args.dataset_name,
                        pretrained=args.pretrained or args.dataset_name is not None,
                        use_decoder=False, use_classifier=False, for_training=False)
    if args.format == 'onnx':
        from .onnx_export import export_onnx  # pylint: disable=import-outside-toplevel
        path = export_onnx(bert, args.output, seq_len=args.seq_len, batch_size=args.batch_size,
                           opset=args.opset, dynamic=not args.static, int8=args.int8)
        print(f'wrote {path}')
        return [path]
    files = export_model(bert, args.output, sample_inputs(bert.config['vocab_size'],
                                                          args.batch_size, args.seq_len))
    print(f'wrote {files[0]} and {files[1]}')
    return list(files)


def build_parser():
    """argparse parser with the subcommands predict, quantize, embed, export, convert, launch."""
    parser = argparse.ArgumentParser(prog='gluonbert', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    predict = sub.add_parser('predict', help='classify sentences with an exported model folder')
    predict.add_argument('--model-dir', required=True, type=existing_dir,
                         help='the export/ folder written by finetune_classifier.py')
    predict.add_argument('--precision', default='float32', choices=['float32', 'bfloat16'],
                         help='compute precision (bfloat16 needs an AVX-512 CPU; for int8 '
                              'write an int8 folder with `gluonbert quantize`)')
    predict.add_argument('texts', nargs='*', help='sentences (default: one per stdin line)')
    predict.set_defaults(run=_predict)
    quant = sub.add_parser('quantize', help='calibrate an exported classifier on real '
                                            'sentences and write its int8 version')
    quant.add_argument('--model-dir', required=True, type=existing_dir,
                       help='the float32 export/ folder')
    quant.add_argument('--calib-file', required=True, type=existing_file,
                       help='TSV (or .csv) with a header, e.g. the task\'s dev.tsv')
    quant.add_argument('--text-columns', default='sentence',
                       help='comma-separated text column(s) of --calib-file (default sentence)')
    quant.add_argument('--calib-samples', type=positive_int, default=512,
                       help='calibrate on the first N rows (default 512)')
    quant.add_argument('--output', required=True, help='folder for the int8 export')
    quant.add_argument('--overwrite', action='store_true', help='replace --output if it exists')
    quant.set_defaults(run=_quantize)
    emb = sub.add_parser('embed', help='mean-pooled sentence embeddings and a similarity '
                                       'heatmap')
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
    exp.add_argument('--model', default='bert_6_384_12')
    exp.add_argument('--dataset-name', help='pretrained weights from the store')
    exp.add_argument('--pretrained', type=existing_path,
                     help='checkpoint path instead of --dataset-name')
    exp.add_argument('--from-scratch', action='store_true',
                     help='export random weights (a deployment dry run)')
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


def main(argv=None):
    """Entry point of the `gluonbert` console script: runs `run(argv)`; an error ends as one line
    and exit code 2 (a mistake), 1 (a failure) or 130 (Ctrl-C); --debug shows the traceback."""
    return run_main(run, argv, prog='gluonbert')


def run(argv=None):
    """Run one `gluonbert` command; its errors are raised (`main` turns them into one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['convert']:
        from .convert_command import main as convert_main  # pylint: disable=import-outside-toplevel
        return convert_main(argv[1:])
    if argv[:1] == ['launch']:
        from .launcher import main as launch_main  # pylint: disable=import-outside-toplevel
        return launch_main(argv[1:])
    args = build_parser().parse_args(argv)
    mx.random.seed(0)
    args.run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
