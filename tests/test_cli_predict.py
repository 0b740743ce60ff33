"""`gluonbert predict`, `quantize` and `embed` as users call them: sentence pairs from stdin, files
and arguments, label names, --json, clear refusals; the similarity matrix and heatmap of embed."""
import io
import json
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import cli, save_pretrained
from gluonbert.data import BERTSentenceTransform, BERTTokenizer, BERTVocab
from gluonbert.data.batchify import bert_inputs
from gluonbert.files import write_json
from gluonbert.inference import (SentenceClassifier, embed, plot_similarity, shorten,
                                 similarity_figure, similarity_table)
from gluonbert.model import (BERTClassifier, BERTForQA, BERTForTokenClassification,
                             BERTRegression)
from conftest import TINY, tiny_model

WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'a', 'movie', 'film', 'was', 'is',
         'not', 'very', 'good', 'bad', 'great', 'boring', 'i', 'it', 'this', 'and', 'but', 'love',
         'hate', 'act', '##ing', '##ed', '##s', '##ly', 'plot', 'story', 'end', 'who', 'what',
         'where', 'paris', 'london', 'city', 'in', 'of', 'to', '.', ',', '!', '?', 'fun', 'slow',
         'sad', 'happy', 'people']
PAIRS = [('the film was great', 'I love it.'), ('boring story', 'it is very good!'),
         ('who acted?', 'people in london'), ('a sad end', 'happy people in paris')]
SINGLES = ['This movie was very good!', 'the acting is boring, and the plot slow.', 'I loved it']
PAIR_LABELS = ['different', 'same']


@pytest.fixture(name='vocab')
def fixture_vocab():
    return BERTVocab(WORDS)


def classifier(vocab, texts, pair):
    """A tiny BERTClassifier with random weights that gives both labels among `texts`, and its
    probabilities on them (the first seed that does: deterministic)."""
    for seed in range(50):
        block = _random_classifier(seed)
        probs = softmax(block(*encode(vocab, texts, pair)).asnumpy())
        if len(set(probs.argmax(1).tolist())) == 2:
            return block, probs
    raise AssertionError('no seed gives both labels')


def _random_classifier(seed, num_classes=2):
    """A tiny BERTClassifier with random weights (see randomize)."""
    mx.random.seed(seed)
    block = BERTClassifier(tiny_model(use_decoder=False, use_classifier=False),
                           num_classes=num_classes)
    block.initialize_head()
    return randomize(block)


def randomize(block):
    """N(0, 0.3) weights everywhere (LayerNorm scales around 1): inputs get different answers."""
    for name, param in block._collect_params_with_prefix().items():
        noise = mx.nd.random.normal(0, 0.3, shape=param.shape)
        param.set_data(noise + 1 if name.endswith('gamma') else noise)
    return block


def encode(vocab, texts, pair):
    """Texts (or pairs) -> (ids, types, valid_length), as gluonbert tokenizes them."""
    transform = BERTSentenceTransform(BERTTokenizer(vocab, lower=True), TINY['max_length'],
                                      pad=False, pair=pair)
    return bert_inputs()([transform(t if pair else (t,)).model_inputs() for t in texts])


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(name='pair_model', scope='module')
def fixture_pair_model(tmp_path_factory):
    """(save_pretrained folder of an MRPC pair classifier named different/same, its expected
    probabilities on PAIRS)."""
    vocab = BERTVocab(WORDS)
    block, probs = classifier(vocab, PAIRS, pair=True)
    folder = save_pretrained(block, str(tmp_path_factory.mktemp('m') / 'mrpc'), vocab,
                             labels=PAIR_LABELS, task='MRPC')
    return folder, probs


@pytest.fixture(name='single_model', scope='module')
def fixture_single_model(tmp_path_factory):
    """(export folder as finetune_classifier.py writes it for SST-2: labels '0'/'1', the
    expected probabilities on SINGLES)."""
    vocab = BERTVocab(WORDS)
    block, probs = classifier(vocab, SINGLES, pair=False)
    folder = str(tmp_path_factory.mktemp('s') / 'export')
    save_pretrained(block, folder + '-full', vocab, task='SST-2')
    os.rename(os.path.join(folder + '-full', 'export'), folder)
    meta = json.load(open(os.path.join(folder, 'meta.json'), encoding='utf-8'))
    write_json(os.path.join(folder, 'meta.json'), dict(  # finetune_classifier.py's keys
        task='SST-2', labels=['0', '1'], regression=False, max_len=meta['max_len'], lower=True,
        model='tiny'))
    return folder, probs


def run_cli(argv, capsys, monkeypatch, stdin=None):
    """cli.main(argv) with `stdin` text -> (exit code, stdout lines, stderr)."""
    if stdin is not None:
        monkeypatch.setattr('sys.stdin', io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out.strip('\n').split('\n') if out.strip() else [], err


def check_rows(lines, probs, names, inputs):
    """Tab-separated `label  score  text[  text_pair]` lines against expected probabilities."""
    assert len(lines) == len(inputs)
    for line, row, text in zip(lines, probs, inputs):
        cells = line.split('\t')
        assert cells[0] == names[int(row.argmax())]
        assert abs(float(cells[1]) - row.max()) < 1e-3
        assert cells[2:] == (list(text) if isinstance(text, tuple) else [text])


def test_pair_model_reads_tsv_on_stdin_and_prints_its_label_names(pair_model, capsys,
                                                                   monkeypatch):
    folder, probs = pair_model
    assert len({int(i) for i in probs.argmax(1)}) == 2  # both labels occur: a real check
    stdin = ''.join(f'{a}\t{b}\n' for a, b in PAIRS)
    code, lines, err = run_cli(['predict', '--model-dir', folder], capsys, monkeypatch, stdin)
    assert code == 0 and err == ''
    check_rows(lines, probs, PAIR_LABELS, PAIRS)


def test_pair_model_reads_a_csv_file_and_arguments(pair_model, capsys, monkeypatch, tmp_path):
    folder, probs = pair_model
    path = tmp_path / 'pairs.csv'
    path.write_text('id,sentence1,sentence2\n' + ''.join(
        f'{i},"{a}","{b}"\n' for i, (a, b) in enumerate(PAIRS)), encoding='utf-8')
    code, lines, _ = run_cli(['predict', '--model-dir', os.path.join(folder, 'export'),
                              '--input-file', str(path)], capsys, monkeypatch)
    assert code == 0
    check_rows(lines, probs, PAIR_LABELS, PAIRS)
    argv = ['predict', '--model-dir', folder]
    for a, b in PAIRS[:2]:
        argv += ['--text', a, '--text-pair', b]
    code, lines, _ = run_cli(argv, capsys, monkeypatch)
    assert code == 0
    check_rows(lines, probs[:2], PAIR_LABELS, PAIRS[:2])


def test_json_lines_carry_the_pipeline_keys_and_all_scores(pair_model, capsys, monkeypatch):
    folder, probs = pair_model
    stdin = ''.join(f'{a}\t{b}\n' for a, b in PAIRS)
    code, lines, _ = run_cli(['predict', '--model-dir', folder, '--json', '--all-scores'],
                             capsys, monkeypatch, stdin)
    assert code == 0
    records = [json.loads(line) for line in lines]
    for record, row, (a, b) in zip(records, probs, PAIRS):
        assert record['label'] == PAIR_LABELS[int(row.argmax())]
        assert abs(record['score'] - row.max()) < 1e-5
        assert (record['text'], record['text_pair']) == (a, b)
        assert [s['label'] for s in record['scores']] == \
            [PAIR_LABELS[i] for i in np.argsort(-row)]
        np.testing.assert_allclose([s['score'] for s in record['scores']], np.sort(row)[::-1],
                                   atol=1e-5)


def test_single_model_prints_glue_names_and_json_without_pair(single_model, capsys,
                                                              monkeypatch):
    folder, probs = single_model
    assert len({int(i) for i in probs.argmax(1)}) == 2
    code, lines, err = run_cli(['predict', '--model-dir', folder, *SINGLES], capsys, monkeypatch)
    assert code == 0 and err == ''
    check_rows(lines, probs, ['negative', 'positive'], SINGLES)
    code, lines, _ = run_cli(['predict', '--model-dir', folder, '--json', '--top-k', '1'],
                             capsys, monkeypatch, '\n'.join(SINGLES) + '\n')
    records = [json.loads(line) for line in lines]
    assert [set(r) for r in records] == [{'label', 'score', 'text'}] * len(SINGLES)
    assert [r['text'] for r in records] == SINGLES


def test_regression_pairs_from_a_headerless_tsv_print_their_score(vocab, capsys, monkeypatch,
                                                                  tmp_path):
    block = BERTRegression(tiny_model(use_decoder=False, use_classifier=False))
    block.initialize_head()
    randomize(block)
    folder = save_pretrained(block, str(tmp_path / 'sts'), vocab, labels=['similarity'],
                             task='STS-B')
    expected = block(*encode(vocab, PAIRS, pair=True)).asnumpy()[:, 0]
    assert np.ptp(expected) > 1e-3
    path = tmp_path / 'pairs.tsv'
    path.write_text(''.join(f'{a}\t{b}\n' for a, b in PAIRS), encoding='utf-8')
    code, lines, _ = run_cli(['predict', '--model-dir', folder, '--input-file', str(path)],
                             capsys, monkeypatch)
    assert code == 0 and len(lines) == len(PAIRS)  # no header: the first row is data
    for line, value, (a, b) in zip(lines, expected, PAIRS):
        name, score, *texts = line.split('\t')
        assert name == 'similarity' and texts == [a, b]
        assert abs(float(score) - value) < 1e-4
    code, _, err = run_cli(['predict', '--model-dir', folder, '--top-k', '2', '--input-file',
                            str(path)], capsys, monkeypatch)
    assert code == 2 and '--top-k and --all-scores apply to classifiers' in err


def test_unnamed_labels_print_as_numbers_with_a_note(single_model, capsys, monkeypatch,
                                                     tmp_path):
    folder, probs = single_model
    unnamed = tmp_path / 'unnamed'
    os.mkdir(unnamed)
    for name in os.listdir(folder):
        if name != 'meta.json':
            os.symlink(os.path.join(folder, name), unnamed / name)
    write_json(str(unnamed / 'meta.json'), dict(task='my-task', labels=['0', '1'],
                                                regression=False, max_len=24, lower=True))
    code, lines, err = run_cli(['predict', '--model-dir', str(unnamed), SINGLES[0]], capsys,
                               monkeypatch)
    assert code == 0 and lines[0].split('\t')[0] == str(int(probs[0].argmax()))
    assert 'labels have no names' in err and 'meta.json' in err


@pytest.mark.parametrize('argv, stdin, words', [
    (['x', 'y'], None, 'reads sentence pairs (MRPC): give --text A --text-pair B'),
    ([], 'one sentence\nanother\n', 'line 1: expected two tab-separated columns'),
    (['--text', 'a', '--text', 'b', '--text-pair', 'c'], None, '2 --text but 1 --text-pair'),
])
def test_a_pair_model_given_single_sentences_is_refused(pair_model, capsys, monkeypatch, argv,
                                                        stdin, words):
    code, lines, err = run_cli(['predict', '--model-dir', pair_model[0], *argv], capsys,
                               monkeypatch, stdin)
    assert code == 2 and lines == []
    assert err.count('\n') == 1 and words in err, err


@pytest.mark.parametrize('argv, stdin, words', [
    (['--text', 'a b', '--text-pair', 'c'], None, 'is a single-sentence model (SST-2)'),
    (['--pair', 'x'], None, 'reads sentence pairs'),
    ([], 'a\tb\n', 'line 1: expected one sentence (no tab'),
])
def test_a_single_sentence_model_given_pairs_is_refused(single_model, capsys, monkeypatch,
                                                        argv, stdin, words):
    code, _, err = run_cli(['predict', '--model-dir', single_model[0], *argv], capsys,
                           monkeypatch, stdin)
    assert code == 2 and err.count('\n') == 1 and words in err, err


def test_question_answering_folders_are_refused_clearly(vocab, capsys, monkeypatch, tmp_path):
    block = BERTForQA(tiny_model(use_pooler=False, use_decoder=False, use_classifier=False))
    block.initialize_head()
    folder = save_pretrained(block, str(tmp_path / 'qa'), vocab)
    squad_export = tmp_path / 'squad-export'
    os.mkdir(squad_export)
    write_json(str(squad_export / 'meta.json'), dict(  # what finetune_squad.py writes
        task='squad1.1', lower=True, max_seq_length=384, outputs=['start_logits', 'end_logits']))
    for path in (folder, str(squad_export)):
        code, _, err = run_cli(['predict', '--model-dir', path, 'a question'], capsys,
                               monkeypatch)
        assert code == 2 and err.count('\n') == 1, err
        assert 'question-answering (SQuAD) model, not a sentence classifier' in err
        assert 'finetune_squad.py --only-inference' in err and 'KeyError' not in err
    tagger = BERTForTokenClassification(tiny_model(use_pooler=False, use_decoder=False,
                                                   use_classifier=False), num_classes=3)
    tagger.initialize_head()
    folder = save_pretrained(tagger, str(tmp_path / 'ner'), vocab, labels=['O', 'B', 'I'])
    code, _, err = run_cli(['predict', '--model-dir', folder, 'a b'], capsys, monkeypatch)
    assert code == 2 and 'holds a BERTForTokenClassification, not a sentence classifier' in err


def test_quantize_finds_mrpc_columns_and_the_int8_folder_keeps_pairs(pair_model, capsys,
                                                                     monkeypatch, tmp_path):
    folder, probs = pair_model
    calib = tmp_path / 'train.tsv'
    rows = [f'{i % 2}\t{i}\t{i + 1}\t{a} {b}\t{b}' for i, (a, b) in enumerate(PAIRS * 4)]
    calib.write_text('\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n' + '\n'.join(rows),
                     encoding='utf-8')
    code, lines, err = run_cli(['quantize', '--model-dir', folder, '--calib-file', str(calib),
                                '--output', str(tmp_path / 'int8')], capsys, monkeypatch)
    assert code == 0, err
    assert 'calibrated on 16 sentence pairs' in lines[0]
    int8 = SentenceClassifier(str(tmp_path / 'int8'))
    assert int8.meta['pair'] is True and int8.meta['precision'] == 'int8'
    assert np.abs(int8.predict_proba(PAIRS) - probs).max() < 0.1
    assert int8.label_names == PAIR_LABELS


def test_quantize_without_text_columns_on_a_file_it_cannot_read_says_so(single_model, capsys,
                                                                       monkeypatch, tmp_path):
    calib = tmp_path / 'odd.tsv'
    calib.write_text('label\tbody\tsource\n1\tgood\tweb\n', encoding='utf-8')
    code, _, err = run_cli(['quantize', '--model-dir', single_model[0], '--calib-file',
                            str(calib), '--output', str(tmp_path / 'o')], capsys, monkeypatch)
    assert code == 2 and "first row: ['label', 'body', 'source']" in err
    assert '--text-columns' in err
    code, lines, _ = run_cli(['quantize', '--model-dir', single_model[0], '--calib-file',
                              str(calib), '--text-columns', 'body', '--output',
                              str(tmp_path / 'o')], capsys, monkeypatch)
    assert code == 0 and 'calibrated on 1 sentences' in lines[0]


def test_embed_prints_the_similarity_matrix_by_default(capsys, monkeypatch):
    texts = ['A man plays a guitar.', 'Someone plays an instrument.', 'The stock market fell.']
    code, lines, _ = run_cli(['embed', *texts], capsys, monkeypatch)
    assert code == 0
    assert lines[0] == 'cosine similarity:'
    assert lines[1].split() == ['1', '2', '3']
    printed = np.array([[float(v) for v in line.split()[1:]] for line in lines[2:5]])
    assert [line.split()[0] for line in lines[2:5]] == ['1', '2', '3']
    assert lines[6:9] == [f'{i + 1}  {text}' for i, text in enumerate(texts)]
    bert, vocab = gluonbert.get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2',
                                      use_decoder=False, use_classifier=False,
                                      for_training=False)
    vectors = embed(bert, BERTTokenizer(vocab, lower=True), texts)
    np.testing.assert_allclose(printed, np.round(np.inner(vectors, vectors), 2), atol=0.0101)
    assert printed[0, 1] > printed[0, 2] + 0.2  # the related pair is the more similar one


def test_similarity_table_numbers_rows_and_cuts_long_sentences():
    sims = np.array([[1.0, 0.123], [0.123, 1.0]])
    table = similarity_table(['short', 'x' * 80], sims, width=20).split('\n')
    assert table[:3] == ['       1      2', '1   1.00   0.12', '2   0.12   1.00']
    assert table[4] == '1  short' and table[5] == '2  ' + 'x' * 19 + '\u2026'
    assert shorten('a' * 10, 10) == 'a' * 10 and shorten('a' * 11, 10) == 'a' * 9 + '\u2026'


def test_heatmap_labels_its_colour_bar_and_contrasts_its_numbers(tmp_path):
    vectors = np.eye(3)[[0, 0, 1, 2]]  # sentences 1 and 2 identical: similarity 1, others 0
    texts = ['one', 'one', 'two', 'a very long sentence ' * 6]
    fig, sims = similarity_figure(texts, vectors)
    ax, key, bar = fig.axes
    colours = {text.get_text(): [] for text in ax.texts}
    for text in ax.texts:
        colours[text.get_text()].append(text.get_color())
    assert set(colours['1.00']) == {'white'}  # dark red cells
    assert set(colours['0.00']) == {'black'}  # light yellow cells
    assert bar.get_ylabel() == 'cosine similarity'
    listed = [text.get_text() for text in key.texts]
    assert listed[3].endswith('\u2026') and len(listed[3]) == len('4  ') + 60
    assert listed[0] == '1  one'
    np.testing.assert_allclose(sims[0], [1, 1, 0, 0])
    path = str(tmp_path / 'sim.png')
    plot_similarity(texts, vectors, path)
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
