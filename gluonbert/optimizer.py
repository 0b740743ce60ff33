"""`gluonbert.optimizer`: GluonNLP 0.10's `nlp.optimizer` name for the optimizers.

The implementation is `gluonbert.train.optimizer`; this module only re-exports it. Importing it
registers 'bertadam' and 'adamw' with MXNet, so `gluon.Trainer(params, 'bertadam', ...)` works.
"""
from .train.optimizer import AdamW, BERTAdam

__all__ = ['AdamW', 'BERTAdam']
