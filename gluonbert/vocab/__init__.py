"""`gluonbert.vocab`: the vocabularies under GluonNLP 0.10's module name (`nlp.vocab.BERTVocab`).

The implementation is `gluonbert.data.vocab`; this package only re-exports it.
"""
from ..data.vocab import BERTVocab, Vocab, as_vocab
from . import bert

__all__ = ['BERTVocab', 'Vocab', 'as_vocab', 'bert']
