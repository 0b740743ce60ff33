"""gluonbert: a BERT model zoo for Apache MXNet Gluon."""
__version__ = '0.1.0'  # the only place the version is written (pyproject.toml reads it)

from . import mxnet_compat  # noqa: F401  first: applied on import, before any array is built
from . import convert, data, metrics, model, optimizer, store, utils, vocab
from .convert import ConversionError, load_checkpoint
from .data import BERTSentenceTransform, BERTTokenizer, BERTVocab
from .vocab import Vocab
from .export import export_model, import_model, optimize_for_cpu
from .model import (BERTClassifier, BERTConfig, BERTEncoder, BERTForMultipleChoice, BERTForQA,
                    BERTForTokenClassification, BERTModel, BERTRegression, MLMDecoder,
                    NSClassifier, Pooler)
from .onnx_export import export_onnx
from .precision import UnsupportedPrecisionError, to_bfloat16
from .pretrained import PretrainedInfo, from_pretrained, save_pretrained
from .embeddings import SentenceEncoder, cos_sim, semantic_search
from .pipelines import pipeline
from .quantization import quantize
from .registry import get_model, list_models, register_model
from .store import list_pretrained, register_pretrained
from .summary import count_parameters, model_summary

# The top package wires functions of the layers above `model/` onto it, so `model/` itself never
# imports them: GluonNLP 0.10 users call `nlp.model.get_model(...)`, HuggingFace users
# `model.save_pretrained(folder)`.
model.get_model, model.list_models = get_model, list_models
for _block in (BERTModel, BERTClassifier, BERTRegression, BERTForTokenClassification, BERTForQA,
               BERTForMultipleChoice):
    _block.save_pretrained = save_pretrained
del _block
