"""gluonbert: a BERT model zoo for Apache MXNet Gluon."""
from . import convert, data, metrics, model, optimizer, store, vocab
from .convert import ConversionError, load_checkpoint
from .store import list_pretrained, register_pretrained
from .data import BERTSentenceTransform, BERTTokenizer, BERTVocab
from .vocab import Vocab
from .export import export_model, import_model, optimize_for_cpu
from .precision import UnsupportedPrecisionError, to_bfloat16
from .quantization import quantize
from .model import (BERTClassifier, BERTEncoder, BERTForMultipleChoice, BERTForQA,
                    BERTForTokenClassification, BERTModel, BERTRegression, MLMDecoder,
                    NSClassifier, Pooler)
from .registry import get_model, list_models, register_model
from .summary import count_parameters, model_summary

# GluonNLP 0.10 users call `nlp.model.get_model(...)`: the top package wires the registry's
# functions into the `model` namespace, so `model/` itself never imports the registry above it.
model.get_model, model.list_models = get_model, list_models

__version__ = '0.1.0'
