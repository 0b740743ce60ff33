"""Using trained models: classify sentences with an exported model, embed sentences, plot
their similarity."""
import json
import os

import mxnet as mx
import numpy as np

from .data import batchify
from .data.tokenizer import BERTTokenizer
from .data.transforms import BERTSentenceTransform
from .data.vocab import BERTVocab
from .embeddings import encode_texts
from .files import atomic_folder, write_json, write_with
from .export import export_model, import_model
from .model.task_heads import mean_over_valid
from .precision import to_bfloat16
from .quantization import quantize


PRECISIONS = ('float32', 'bfloat16')


def _inputs(transform, texts, ctx):
    """Texts (str or (a, b) pairs) -> (input_ids, token_types, valid_length) NDArrays."""
    fn = batchify.bert_inputs()
    rows = [transform(t if isinstance(t, (tuple, list)) else (t,)).model_inputs() for t in texts]
    return [a.as_in_context(ctx) for a in fn(rows)]


class SentenceClassifier:
    """An exported classifier folder (`model-symbol.json`, params, `vocab.txt`, `meta.json`, as
    finetune_classifier.py writes it) ready to label raw sentences."""

    def __init__(self, folder, ctx=mx.cpu(), precision='float32'):
        if precision not in PRECISIONS:
            raise ValueError('precision must be one of {}; got {!r} (int8: load float32, then '
                             'call quantize)'.format(PRECISIONS, precision))
        meta_path = os.path.join(folder, 'meta.json')
        if not os.path.isfile(meta_path):
            raise FileNotFoundError('{} has no meta.json: not a folder written by '
                                    'finetune_classifier.py'.format(folder))
        with open(meta_path, encoding='utf-8') as f:
            self.meta = json.load(f)
        self.ctx = ctx
        self.net = import_model(os.path.join(folder, 'model'), num_inputs=3, ctx=ctx,
                               for_training=False)
        vocab = BERTVocab.from_file(os.path.join(folder, 'vocab.txt'))
        self.tokenizer = BERTTokenizer(vocab, lower=self.meta['lower'])
        self.vocab = vocab
        if precision == 'bfloat16':
            self.net = to_bfloat16(self.net, self._batches(['a sample sentence'], 1)[0])

    def _batches(self, texts, batch_size):
        """Texts (or pairs) -> list of (input_ids, token_types, valid_length) batches."""
        transform = BERTSentenceTransform(self.tokenizer, self.meta['max_len'], pad=False,
                                          pair=bool(texts) and isinstance(texts[0], (tuple, list)))
        return [_inputs(transform, texts[start:start + batch_size], self.ctx)
                for start in range(0, len(texts), batch_size)]

    def quantize(self, calib_texts, batch_size=32, calib_mode='naive'):
        """Replace the model by its int8 version calibrated on `calib_texts` (a few hundred
        real sentences of the task, e.g. its dev set); returns self."""
        if not calib_texts:
            raise ValueError('quantize needs calibration sentences')
        self.net = quantize(self.net, self._batches(list(calib_texts), batch_size),
                            calib_mode=calib_mode)
        self.meta['precision'] = 'int8'
        return self

    def save(self, folder, overwrite=False):
        """Write this classifier (e.g. after quantize) as an export folder loadable again."""
        with atomic_folder(folder, overwrite=overwrite) as tmp:
            export_model(self.net, os.path.join(tmp, 'model'),
                         self._batches(['a sample sentence'], 1)[0])
            self.vocab.to_file(os.path.join(tmp, 'vocab.txt'))
            write_json(os.path.join(tmp, 'meta.json'), self.meta)
        return folder

    def predict_proba(self, texts, batch_size=32):
        """Texts (or (a, b) pairs) -> class probabilities (N, C), or scores (N,) for regression."""
        out = []
        for batch in self._batches(texts, batch_size):
            logits = self.net(*batch)
            out.append(logits.asnumpy()[:, 0] if self.meta['regression'] else
                       mx.nd.softmax(logits).asnumpy())
        return np.concatenate(out)

    def predict(self, texts, batch_size=32):
        """Texts -> labels (the task's label strings) or scores for regression."""
        return self.labels_of(self.predict_proba(texts, batch_size))

    def labels_of(self, probs):
        """predict_proba's output -> labels (or the scores themselves for regression)."""
        if self.meta['regression']:
            return probs.tolist()
        return [self.meta['labels'][i] for i in probs.argmax(axis=1)]


def predict_sentiment(net, tokenizer, sentence, max_len=128, labels=('negative', 'positive'),
                      ctx=mx.cpu()):
    """GluonNLP tutorial style: one sentence -> its label, from a classifier net (or SymbolBlock)."""
    transform = BERTSentenceTransform(tokenizer, max_len, pad=False, pair=False)
    logits = net(*_inputs(transform, [sentence], ctx))
    return labels[int(logits.argmax(axis=1).asscalar())]


def embed(bert, tokenizer, sentences, max_len=128, batch_size=32, ctx=mx.cpu(), normalize=True,
          progress=None):
    """Mean-pooled sentence embeddings (N, units) over valid tokens ([CLS]/[SEP] included, as
    sentence-transformers does); L2-normalized by default. `bert` is any block returning the
    hidden states (batch, seq_len, units) first; batching, sorting by length and the progress
    bar are gluonbert.embeddings.encode_texts' (SentenceEncoder.encode runs the same)."""
    def forward(ids, types, lengths):
        outputs = bert(ids, types, lengths)
        sequence = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        return mean_over_valid(mx.nd, sequence, lengths)
    return encode_texts(forward, tokenizer, sentences, max_len, batch_size, ctx, normalize,
                        progress)


def plot_similarity(labels, embeddings, path, title='Semantic textual similarity'):
    """Heatmap PNG of the cosine similarities of `embeddings` (rows L2-normalized), like TF
    Hub's plot_similarity; returns the (N, N) similarity matrix."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    sims = np.inner(embeddings, embeddings)
    n = len(labels)
    side = max(4.0, 0.6 * n + 2)
    fig, (ax, key) = plt.subplots(1, 2, figsize=(side + 5, side),
                                  gridspec_kw=dict(width_ratios=[side, 5]))
    image = ax.imshow(sims, cmap='YlOrRd', vmin=min(0.0, float(sims.min())), vmax=1)
    ticks = [str(i + 1) for i in range(n)]
    ax.set_xticks(range(n))
    ax.set_xticklabels(ticks)
    ax.set_yticks(range(n))
    ax.set_yticklabels(ticks)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, '{:.2f}'.format(sims[i, j]), ha='center', va='center', fontsize=8)
    key.axis('off')
    for i, text in enumerate(labels):
        key.text(0, 1 - (i + 0.5) / max(n, 8), '{}  {}'.format(i + 1, text[:60]),
                 va='center', fontsize=9, transform=key.transAxes)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    write_with(path, lambda temp: fig.savefig(temp, dpi=90), suffix='.png')
    plt.close(fig)
    return sims
