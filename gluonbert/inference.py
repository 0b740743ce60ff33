"""Using trained models: classify sentences with an exported model, embed sentences, plot
their similarity."""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import mxnet as mx
import numpy as np

from .data import batchify
from .data.tokenizer import BERTTokenizer
from .data.readers import read_table, read_text
from .data.tasks import TASKS
from .data.transforms import BERTSentenceTransform
from .data.vocab import BERTVocab
from .batched import run_batched
from .embeddings import encode_texts
from .files import atomic_folder, write_json, write_with
from .export import export_model, import_model
from .errors import UsageError
from .model.task_heads import mean_over_valid
from .precision import to_bfloat16
from .pretrained import EXPORT_FOLDER, META_NAME
from .quantization import CLASSIFIER_CALIB_MODE, quantize

if TYPE_CHECKING:
    from matplotlib.figure import Figure


PRECISIONS = ('float32', 'bfloat16')


def _inputs(transform, texts, ctx):
    """Texts (str or (a, b) pairs) -> (input_ids, token_types, valid_length) NDArrays."""
    fn = batchify.bert_inputs()
    rows = [transform(t if isinstance(t, (tuple, list)) else (t,)).model_inputs() for t in texts]
    return [a.as_in_context(ctx) for a in fn(rows)]


# GLUE's label names (as HuggingFace's `glue` datasets give them) for folders whose labels are
# the raw file values '0'/'1' that finetune_classifier.py records.
GLUE_LABEL_NAMES = {'sst2': ['negative', 'positive'], 'mrpc': ['not_equivalent', 'equivalent'],
                    'cola': ['unacceptable', 'acceptable'], 'qqp': ['not_duplicate', 'duplicate'],
                    'rte': ['entailment', 'not_entailment'],
                    'qnli': ['entailment', 'not_entailment'], 'wnli': ['not_entailment',
                                                                        'entailment']}
PAIR_TASKS = {'mrpc', 'stsb', 'snli', 'mnli', 'mnlimm', 'qnli', 'qqp', 'rte', 'wnli'}
SINGLE_TASKS = {'sst2', 'cola', 'imdb'}
CLASSIFIER_BLOCKS = (None, 'BERTClassifier', 'BERTRegression')


def _task_key(task) -> str:
    """'SST-2' -> 'sst2' (task names compared without case and punctuation)."""
    return ''.join(c for c in str(task or '').lower() if c.isalnum())


def task_is_pair(meta: dict) -> bool | None:
    """True / False when an export's meta.json says (or its task tells) whether the model reads
    sentence pairs; None when unknown."""
    if meta.get('pair') is not None:
        return bool(meta['pair'])
    key = _task_key(meta.get('task'))
    if key in PAIR_TASKS:
        return True
    return False if key in SINGLE_TASKS else None


def export_folder_of(folder: str) -> str:
    """The export folder SentenceClassifier reads: `folder` itself (meta.json inside) or the
    export/ subfolder of a save_pretrained folder."""
    if os.path.isfile(os.path.join(folder, 'meta.json')):
        return folder
    inner = os.path.join(folder, EXPORT_FOLDER)
    if os.path.isfile(os.path.join(inner, 'meta.json')):
        return inner
    if os.path.isfile(os.path.join(folder, META_NAME)) or \
            os.path.isfile(os.path.join(folder, 'config.json')):
        raise FileNotFoundError(f'{folder} has no {EXPORT_FOLDER}/ folder to predict with: write '
                                'it with save_pretrained(model, folder) (export=True, the '
                                'default)')
    raise FileNotFoundError(f'{folder} has no meta.json: not a folder written by '
                            'finetune_classifier.py or save_pretrained')


def _check_classifier_meta(folder, meta):
    """One clear error when an export is not a sentence classifier (e.g. SQuAD's)."""
    block = meta.get('block')
    if 'start_logits' in meta.get('outputs', ()) or block == 'BERTForQA':
        raise UsageError(f'{folder} is a question-answering (SQuAD) model, not a sentence '
                         'classifier: answer questions with `python model_zoo/bert/'
                         'finetune_squad.py --only-inference --params ... --dev-file '
                         'questions.json`, or from_pretrained(folder) with '
                         'gluonbert.data.SquadTransform and predict_answers')
    if block not in CLASSIFIER_BLOCKS:
        raise UsageError(f'{folder} holds a {block}, not a sentence classifier: SentenceClassifier'
                         ' and `gluonbert predict` read BERTClassifier / BERTRegression exports; '
                         'load this one with gluonbert.from_pretrained')
    missing = [key for key in ('max_len', 'lower') if key not in meta]
    if missing:
        raise UsageError(f'{folder}/meta.json lacks {missing}: not a classifier export of '
                         'finetune_classifier.py or save_pretrained')


class SentenceClassifier:
    """An exported classifier folder (`model-symbol.json`, params, `vocab.txt`, `meta.json`, as
    finetune_classifier.py writes it, or the export/ of a save_pretrained folder) ready to label
    raw sentences or sentence pairs."""

    def __init__(self, folder: str | os.PathLike, ctx: mx.Context = mx.cpu(),
                 precision: str = 'float32'):
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}; got {precision!r} (int8: '
                             'load float32, then call quantize)')
        folder = export_folder_of(os.fspath(folder))
        with open(os.path.join(folder, 'meta.json'), encoding='utf-8') as f:
            self.meta = json.load(f)
        _check_classifier_meta(folder, self.meta)
        self.meta.setdefault('regression', False)
        self.folder = folder
        self.pair = task_is_pair(self.meta)
        self.ctx = ctx
        self.net = import_model(os.path.join(folder, 'model'), num_inputs=3, ctx=ctx,
                               for_training=False)
        vocab = BERTVocab.from_file(os.path.join(folder, 'vocab.txt'))
        self.tokenizer = BERTTokenizer(  # the last two: written since 2026-12 (defaults before)
            vocab, lower=self.meta['lower'], strip_accents=self.meta.get('strip_accents'),
            tokenize_chinese_chars=self.meta.get('tokenize_chinese_chars', True))
        self.vocab = vocab
        if precision == 'bfloat16':
            self.net = to_bfloat16(self.net, self._batches([self._sample()], 1)[0])

    @property
    def num_outputs(self) -> int:
        """Number of classes (1 for regression), read from the graph's output layer."""
        if self.meta['regression']:
            return 1
        if self.meta.get('labels'):
            return len(self.meta['labels'])
        probs = self.predict_proba([self._sample()])
        return probs.shape[1]

    @property
    def label_names(self) -> list:
        """Names of the outputs for display: the folder's label names, GLUE's names for a GLUE
        task's raw '0'/'1' labels, else the output numbers as strings (see `has_label_names`)."""
        labels = self.meta.get('labels')
        numbers = [str(i) for i in range(len(labels) if labels else self.num_outputs)]
        glue = GLUE_LABEL_NAMES.get(_task_key(self.meta.get('task')))
        if glue and len(glue) == len(numbers) and (not labels or list(labels) == numbers):
            return list(glue)
        return [str(name) for name in labels] if labels else numbers

    @property
    def has_label_names(self) -> bool:
        """False when the labels are only output numbers ('0', '1', ...)."""
        names = self.label_names
        return names != [str(i) for i in range(len(names))]

    def _sample(self):
        """A sample input of the kind the model reads (a sentence or a pair)."""
        return ('a sample sentence', 'another one') if self.pair else 'a sample sentence'

    def check_inputs(self, texts: Sequence[str | Sequence[str]]) -> None:
        """Raise one clear error when `texts` mixes singles and pairs or does not match the
        model's kind (pairs for a pair model, single sentences otherwise)."""
        kinds = {isinstance(t, (tuple, list)) for t in texts}
        if len(kinds) > 1:
            raise UsageError('the inputs mix single sentences and (sentence, sentence) pairs: '
                             'give one kind')
        if any(isinstance(t, (tuple, list)) and len(t) != 2 for t in texts):
            raise UsageError('a pair input must be (text, text_pair): exactly two texts')
        is_pair = kinds == {True}
        if self.pair is not None and texts and is_pair != self.pair:
            task = self.meta.get('task') or 'its task'
            if self.pair:
                raise UsageError(f'{self.folder} is a sentence-pair model ({task}): give '
                                 '(text, text_pair) pairs, not single sentences')
            raise UsageError(f'{self.folder} is a single-sentence model ({task}): give single '
                             'sentences, not pairs')

    def _rows(self, texts):
        """Texts (or pairs) -> (input_ids, token_types, valid_length) numpy rows, unpadded."""
        transform = BERTSentenceTransform(self.tokenizer, self.meta['max_len'], pad=False,
                                          pair=bool(texts) and isinstance(texts[0], (tuple, list)))
        return [transform(t if isinstance(t, (tuple, list)) else (t,)).model_inputs()
                for t in texts]

    def _batches(self, texts, batch_size):
        """Texts (or pairs) -> list of (input_ids, token_types, valid_length) batches, in order."""
        rows, pad = self._rows(texts), batchify.bert_inputs()
        return [[a.as_in_context(self.ctx) for a in pad(rows[start:start + batch_size])]
                for start in range(0, len(rows), batch_size)]

    def quantize(self, calib_texts: Iterable[str | Sequence[str]], batch_size: int = 32,
                 calib_mode: str = CLASSIFIER_CALIB_MODE) -> SentenceClassifier:
        """Replace the model by its int8 version calibrated on `calib_texts` (a few hundred
        real sentences, or pairs for a pair model, of the task, e.g. its dev set); returns self.
        calib_mode: 'entropy' (KL thresholds, better for the decision) or 'naive' (min/max)."""
        if not calib_texts:
            raise ValueError('quantize needs calibration sentences')
        calib_texts = list(calib_texts)
        self.check_inputs(calib_texts)
        self.net = quantize(self.net, self._batches(calib_texts, batch_size),
                            calib_mode=calib_mode)
        self.meta['precision'] = 'int8'
        return self

    def save(self, folder: str, overwrite: bool = False) -> str:
        """Write this classifier (e.g. after quantize) as an export folder loadable again."""
        meta = dict(self.meta, pair=self.pair) if self.pair is not None else self.meta
        with atomic_folder(folder, overwrite=overwrite) as tmp:
            export_model(self.net, os.path.join(tmp, 'model'),
                         self._batches([self._sample()], 1)[0])
            self.vocab.to_file(os.path.join(tmp, 'vocab.txt'))
            write_json(os.path.join(tmp, 'meta.json'), meta)
        return folder

    def predict_proba(self, texts: Iterable[str | Sequence[str]], batch_size: int = 32
                      ) -> np.ndarray:
        """Texts (or (a, b) pairs) -> class probabilities (N, C), or scores (N,) for regression."""
        texts = list(texts)
        self.check_inputs(texts)
        if not texts:
            raise ValueError('predict needs at least one text')

        def forward(*inputs):
            logits = self.net(*inputs)
            return logits if self.meta['regression'] else mx.nd.softmax(logits)
        # batches of similar length (less padding), answers back in input order
        scores = np.stack([out for out, in run_batched(forward, self._rows(texts), batch_size,
                                                       self.ctx, progress=False)])
        return scores[:, 0] if self.meta['regression'] else scores

    def predict(self, texts: Iterable[str | Sequence[str]], batch_size: int = 32
                ) -> list[str] | list[float]:
        """Texts -> labels (the task's label strings) or scores for regression."""
        return self.labels_of(self.predict_proba(texts, batch_size))

    def labels_of(self, probs: np.ndarray) -> list[str] | list[float]:
        """predict_proba's output -> labels (the task's label strings as meta.json records them,
        output numbers without them) or the scores themselves for regression."""
        if self.meta['regression']:
            return probs.tolist()
        labels = self.meta.get('labels') or [str(i) for i in range(probs.shape[1])]
        return [labels[i] for i in probs.argmax(axis=1)]


# Text columns recognised in a file's header, most specific first.
PAIR_COLUMNS = (('#1 String', '#2 String'), ('sentence1', 'sentence2'), ('text', 'text_pair'),
                ('question', 'sentence'), ('premise', 'hypothesis'), ('text_a', 'text_b'),
                ('question1', 'question2'))
SINGLE_COLUMNS = ('sentence', 'text', 'review')


def find_text_columns(header: list[str], pair: bool | None = None,
                      names: Sequence[str] | None = None, task: str | None = None,
                      path: str = 'the file', headerless_ok: bool = False
                      ) -> tuple[list[str] | list[int], bool]:
    """The text columns of a table -> (columns, has_header).

    header: the cells of the file's first row. pair: True / False when the model reads pairs /
    single sentences, None when unknown. names: the user's column names (--text-columns).
    task: the model's task name, whose own columns come first. Without a recognised header,
    headerless_ok accepts a file of exactly the needed number of columns as data (columns
    0[, 1]); otherwise the error names the header and --text-columns."""
    header = [cell.strip() for cell in header]
    if names:
        missing = [name for name in names if name not in header]
        if missing:
            raise UsageError(f'{path}: no column named {missing[0]!r} (--text-columns); the '
                             f'header has {header}')
        return list(names), True
    candidates = [tuple(f for f in _task_fields(task) if isinstance(f, str))]
    candidates += [c for c in PAIR_COLUMNS if pair is not False]
    candidates += [(c,) for c in SINGLE_COLUMNS if pair is not True]
    sizes = {None: (1, 2), True: (2,), False: (1,)}[pair]
    for columns in candidates:
        if columns and len(columns) in sizes and all(c in header for c in columns):
            return list(columns), True
    if headerless_ok and len(header) in sizes:
        return list(range(len(header))), False
    pairs = [c for c in PAIR_COLUMNS if all(name in header for name in c)]
    if pair is False and pairs:
        raise UsageError(f'{path} holds sentence pairs ({", ".join(pairs[0])}) but the model '
                         'reads single sentences: give a file of single sentences, or '
                         '--text-columns NAME to read one column')
    kind = {None: 'one text column (two for pairs)',
            True: 'two text columns (a sentence-pair model)',
            False: 'one text column (a single-sentence model)'}[pair]
    raise UsageError(f'{path}: cannot tell which columns hold the text (first row: {header}); '
                     f'the model reads {kind}: name them with --text-columns NAME[,NAME2]')


def _task_fields(task):
    """The text columns a known task's files use, () for unknown tasks."""
    for known in TASKS.values():
        if _task_key(known.name) == _task_key(task):
            return known.text_fields
    return ()


def read_text_table(path: str, pair: bool | None = None, names: Sequence[str] | None = None,
                    task: str | None = None, headerless_ok: bool = False
                    ) -> list[str | tuple[str, ...]]:
    """A .tsv or .csv file (format from the extension) -> texts, or (text, text_pair) tuples
    when two text columns are found (see find_text_columns)."""
    delimiter = ',' if path.lower().endswith('.csv') else '\t'
    first = read_text(path).split('\n', 1)[0].rstrip('\r')
    header = next(csv.reader([first], delimiter=delimiter)) if delimiter == ',' else \
        first.split('\t')
    columns, has_header = find_text_columns(header, pair, names, task, path, headerless_ok)
    rows = read_table(path, columns, delimiter=delimiter, header=has_header)
    return [row[0] if len(row) == 1 else tuple(row) for row in rows]


def split_tsv_lines(lines: Iterable[str], pair: bool | None = None,
                    source: str = 'standard input') -> list[str | tuple[str, ...]]:
    """Non-empty lines -> texts, or (text, text_pair) tuples when the lines have two
    tab-separated columns (pair=True demands them, pair=False refuses them)."""
    rows = [(number, line.rstrip('\r\n').split('\t'))
            for number, line in enumerate(lines, start=1) if line.strip()]
    if pair is None:
        pair = any(len(cells) > 1 for _, cells in rows)
    width = 2 if pair else 1
    for number, cells in rows:
        if len(cells) != width:
            what = 'two tab-separated columns (text, text_pair)' if pair else \
                'one sentence (no tab: the model reads single sentences)'
            raise UsageError(f'{source}, line {number}: expected {what}, found {len(cells)} '
                             f'column(s): {chr(9).join(cells)[:60]!r}')
    return [tuple(cells) if pair else cells[0] for _, cells in rows]


def predict_sentiment(net: mx.gluon.Block, tokenizer: BERTTokenizer, sentence: str,
                      max_len: int = 128, labels: Sequence[str] = ('negative', 'positive'),
                      ctx: mx.Context = mx.cpu()) -> str:
    """GluonNLP tutorial style: one sentence -> its label, from a classifier net or SymbolBlock."""
    transform = BERTSentenceTransform(tokenizer, max_len, pad=False, pair=False)
    logits = net(*_inputs(transform, [sentence], ctx))
    return labels[int(logits.argmax(axis=1).asscalar())]


def embed(bert: mx.gluon.Block, tokenizer: BERTTokenizer, sentences: Sequence[str],
          max_len: int = 128, batch_size: int = 32, ctx: mx.Context = mx.cpu(),
          normalize: bool = True, progress: bool | None = None) -> np.ndarray:
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


def shorten(text: str, width: int = 60) -> str:
    """`text` cut to at most `width` characters, ending in an ellipsis ('…') when cut."""
    return text if len(text) <= width else text[:width - 1].rstrip() + '\u2026'


def similarity_table(texts: Sequence[str], sims: np.ndarray, width: int = 60) -> str:
    """The (N, N) similarity matrix as text: numbered rows and columns, values rounded to two
    decimals, then the numbered sentences (cut with an ellipsis beyond `width` characters)."""
    n = len(texts)
    label = len(str(n))
    lines = [' ' * label + ''.join(f'{j + 1:>7}' for j in range(n))]
    for i in range(n):
        lines.append(f'{i + 1:>{label}}' + ''.join(f'{float(v):>7.2f}' for v in sims[i]))
    lines.append('')
    lines.extend(f'{i + 1:>{label}}  {shorten(text, width)}' for i, text in enumerate(texts))
    return '\n'.join(lines)


def _text_colour(rgba) -> str:
    """'white' on a dark cell colour, 'black' on a light one (by relative luminance)."""
    red, green, blue = rgba[:3]
    return 'white' if 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5 else 'black'


def plot_similarity(labels: Sequence[str], embeddings: np.ndarray, path: str,
                    title: str = 'Semantic textual similarity') -> np.ndarray:
    """Heatmap PNG of the cosine similarities of `embeddings` (N, units) (rows L2-normalized),
    like TF Hub's plot_similarity: numbered cells, the numbered sentences beside, a labelled
    colour bar; returns the (N, N) similarity matrix."""
    fig, sims = similarity_figure(labels, embeddings, title)
    import matplotlib.pyplot as plt
    write_with(path, lambda temp: fig.savefig(temp, dpi=90), suffix='.png')
    plt.close(fig)
    return sims


def similarity_figure(labels: Sequence[str], embeddings: np.ndarray,
                      title: str = 'Semantic textual similarity') -> tuple[Figure, np.ndarray]:
    """(matplotlib Figure, (N, N) similarities) of plot_similarity, not yet saved."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
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
            cell = image.cmap(image.norm(sims[i, j]))
            ax.text(j, i, f'{sims[i, j]:.2f}', ha='center', va='center', fontsize=8,
                    color=_text_colour(cell))
    key.axis('off')
    for i, text in enumerate(labels):
        key.text(0, 1 - (i + 0.5) / max(n, 8), f'{i + 1}  {shorten(text, 60)}',
                 va='center', fontsize=9, transform=key.transAxes)
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.set_label('cosine similarity')
    ax.set_title(title)
    fig.tight_layout()
    return fig, sims
