"""Command line: convert a BERT checkpoint between formats (HF, TF, GluonNLP -> gluonbert, HF)."""
import argparse
import os
import sys
from collections.abc import Sequence

from .convert import FORMATS, load_checkpoint
from .convert.common import ConversionError
from .convert.hf import read_tokenizer_settings, save_hf_checkpoint, tokenizer_options
from .convert.layout import backbone_of, block_from_checkpoint
from .convert.native import save_native_checkpoint
from .data.vocab import BERTVocab
from .errors import add_debug_flag, run_main
from .registry import get_hparams


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(
        prog='convert_checkpoint.py',
        description='Convert a BERT checkpoint, checking every tensor name and shape. Sources: '
                    'a HuggingFace folder, a Google TF BERT folder or checkpoint prefix, a '
                    'GluonNLP 0.10 .params file (with --model and --vocab) or a gluonbert '
                    'folder.')
    parser.add_argument('source', help='checkpoint folder, prefix or .params file')
    parser.add_argument('output', help='folder to write (must not exist unless --overwrite)')
    parser.add_argument('--to', choices=('gluonbert', 'hf'), default='gluonbert',
                        help='output format (default: gluonbert)')
    parser.add_argument('--from', dest='source_format', choices=FORMATS,
                        help='source format (default: detected)')
    parser.add_argument('--model', help='registered gluonbert shape (e.g. bert_12_768_12); '
                                        'needed for GluonNLP .params, which carry no config')
    parser.add_argument('--vocab', help='vocabulary: vocab.txt or GluonNLP JSON (.json/.vocab);'
                                        ' replaces the checkpoint\'s own')
    parser.add_argument('--allow-missing', action='store_true',
                        help='accept model tensors absent from the checkpoint (left random)')
    parser.add_argument('--allow-unexpected', action='store_true',
                        help='accept checkpoint tensors the model has no place for (dropped)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    add_debug_flag(parser)
    return parser.parse_args(argv)


def read_vocab(path: str) -> BERTVocab:
    """A vocab.txt or a GluonNLP JSON vocabulary."""
    if path.endswith(('.json', '.vocab')):
        return BERTVocab.from_json(path)
    return BERTVocab.from_file(path)


def convert(args: argparse.Namespace) -> str:
    """Run one conversion; returns a one-line summary."""
    vocab = read_vocab(args.vocab) if args.vocab else None
    hparams = num_heads = None
    if args.model:
        # a registered shape's vocab_size is only the default: the vocabulary sets it
        hparams = get_hparams(args.model, **({'vocab_size': len(vocab)} if vocab else {}))
        num_heads = hparams.num_heads
    checkpoint = load_checkpoint(args.source, vocab=vocab, num_heads=num_heads, hparams=hparams,
                                 fmt=args.source_format)
    if checkpoint.vocab is None:
        raise ConversionError(f'{args.source} ships no vocabulary; give --vocab')
    if not checkpoint.hparams.get('vocab_size'):
        checkpoint.hparams['vocab_size'] = len(checkpoint.vocab)
    block = block_from_checkpoint(checkpoint, args.allow_missing, args.allow_unexpected)
    # the source's tokenizer settings go along: the converted folder must split text the same
    settings = read_tokenizer_settings(args.source) if os.path.isdir(args.source) else {}
    if args.to == 'hf':
        kind = save_hf_checkpoint(block, checkpoint.vocab, args.output, args.overwrite,
                                  labels=checkpoint.labels, lower=settings.get('do_lower_case'),
                                  **tokenizer_options(settings))
    else:
        save_native_checkpoint(block, checkpoint.vocab, args.output, args.overwrite,
                               tokenizer_settings=settings)
        kind = type(block).__name__
    cfg = backbone_of(block).config
    return 'wrote {} ({}, {} layers, {} units, vocab {}) to {}'.format(
        args.to, kind, cfg['num_layers'], cfg['units'], len(checkpoint.vocab),
        os.path.abspath(args.output))


def run(argv: Sequence[str] | None = None) -> int:
    """Parse and convert; errors are raised (`main` turns them into one line)."""
    print(convert(parse_args(argv)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit status 0 on success; a bad checkpoint or an existing output is one
    line and exit status 2, as for every gluonbert command (--debug shows the traceback)."""
    return run_main(run, argv, prog='convert_checkpoint.py')


if __name__ == '__main__':
    sys.exit(main())
