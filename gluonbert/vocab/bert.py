"""BERT's vocabulary and special tokens under GluonNLP 0.10's names (`nlp.vocab.bert.CLS_TOKEN`)."""
from ..data.vocab import (CLS_TOKEN, MASK_TOKEN, PADDING_TOKEN, SEP_TOKEN, UNKNOWN_TOKEN,
                          BERTVocab)

__all__ = ['BERTVocab', 'UNKNOWN_TOKEN', 'PADDING_TOKEN', 'CLS_TOKEN', 'SEP_TOKEN', 'MASK_TOKEN']
