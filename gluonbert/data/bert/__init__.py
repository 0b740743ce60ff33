"""GluonNLP 0.10's `data.bert` helpers for building BERT inputs from several text fields."""
from . import glue
from .glue import concat_sequences, truncate_lengths_equal, truncate_seqs_equal

__all__ = ['glue', 'concat_sequences', 'truncate_lengths_equal', 'truncate_seqs_equal']
