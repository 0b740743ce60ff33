"""BERT blocks for MXNet Gluon: encoder, pretraining heads, full model and task heads."""
from .activations import GELU
from .attention import MultiHeadSelfAttention, interleave_qkv, split_qkv
from .bert import BERTModel
from .config import BERTConfig
from .encoder import BERTEncoder
from .heads import MLMDecoder, NSClassifier, Pooler
from .task_heads import (BERTClassifier, BERTForMultipleChoice, BERTForQA,
                         BERTForTokenClassification, BERTRegression)
from .transformer import TransformerLayer

__all__ = ['GELU', 'MultiHeadSelfAttention', 'interleave_qkv', 'split_qkv', 'BERTModel',
           'BERTConfig', 'BERTEncoder', 'MLMDecoder', 'NSClassifier', 'Pooler', 'BERTClassifier',
           'BERTForMultipleChoice', 'BERTForQA', 'BERTForTokenClassification', 'BERTRegression',
           'TransformerLayer']
