r"""Build a small real-text pretraining corpus for pretrain.py from SQuAD and SST-2 files.

Documents, in this order: every distinct SQuAD paragraph (context) of the --squad files, in
file order, split into sentences after '.', '!' or '?' when the next sentence starts with a
capital letter, a digit or a quote; then the --sst2 training sentences, --sentences-per-document
consecutive ones to a document. Written in Google's create_pretraining_data.py format (one
sentence per line, a blank line after every document), atomically.

  python model_zoo/bert/make_pretraining_corpus.py \
      --squad ../shared/data/squad/train-v1.1-subset.json \
              ../shared/data/squad/dev-v1.1-subset.json \
      --sst2 data/sst2/train.tsv --output out/pretrain-real/corpus.txt
"""
import argparse
import os
import re
import sys

from gluonbert.data import SST2, read_squad
from gluonbert.errors import run_main
from gluonbert.files import write_text

SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=["A-Z0-9])')


def build_parser():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--squad', nargs='*', default=[], metavar='FILE',
                   help='SQuAD v1.1 JSON files whose paragraphs become documents')
    p.add_argument('--sst2', metavar='FILE', help='SST-2 train.tsv whose sentences are grouped '
                                                  'into documents')
    p.add_argument('--sentences-per-document', type=int, default=10,
                   help='SST-2 sentences per document (default 10)')
    p.add_argument('--output', required=True, help='corpus file to write')
    return p


def squad_documents(paths):
    """Every distinct paragraph of the SQuAD files (first occurrence first) as its sentences."""
    contexts = dict.fromkeys(ex.context for path in paths for ex in read_squad(path))
    return [SENTENCE_END.split(context.strip()) for context in contexts]


def sst2_documents(path, per_document):
    """The SST-2 sentences of `path` in file order, `per_document` to a document."""
    sentences = [text.strip() for text, _ in SST2.read(path)]
    return [sentences[i:i + per_document] for i in range(0, len(sentences), per_document)]


def corpus_text(documents):
    """Documents (lists of sentences) -> one sentence per line, a blank line after each."""
    return ''.join('\n'.join(document) + '\n\n' for document in documents)


def main(argv=None):
    """Write the corpus; returns (documents, sentences)."""
    args = build_parser().parse_args(argv)
    if not args.squad and not args.sst2:
        raise SystemExit('nothing to read: pass --squad files and/or --sst2')
    if args.sentences_per_document < 1:
        raise SystemExit('--sentences-per-document must be >= 1')
    documents = squad_documents(args.squad)
    paragraphs = len(documents)
    if args.sst2:
        documents += sst2_documents(args.sst2, args.sentences_per_document)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_text(args.output, corpus_text(documents))
    sentences = sum(len(d) for d in documents)
    print(f'{args.output}: {paragraphs} SQuAD paragraphs, {len(documents)} documents, {sentences} '
          f'sentences')
    return len(documents), sentences


if __name__ == '__main__':
    sys.exit(run_main(main))
