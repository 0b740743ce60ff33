"""gluonbert.pipeline against transformers' pipelines (and, for question answering, which
transformers 5 no longer ships as a pipeline, against BertForQuestionAnswering plus HF's own
span scoring) on the same tiny save_pretrained folders."""
import numpy as np
import pytest

import gluonbert
from gluonbert import from_pretrained, pipeline, save_pretrained
from conftest import tiny_model
from test_pretrained_folder import PAIRS, TEXTS, WORDS, head, randomized

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

# Lengths differ a lot, so batches sorted by length reorder them.
MIXED = ['it', TEXTS[1], 'a sad film', TEXTS[0], 'this plot is not fun at all and very slow .',
         TEXTS[2], TEXTS[3]]


@pytest.fixture(name='vocab')
def fixture_vocab():
    return gluonbert.BERTVocab(WORDS)


def hf_pipe(task, folder, **kwargs):
    return transformers.pipeline(task, model=folder, device='cpu', **kwargs)


def by_label(rows):
    return {row['label']: row['score'] for row in rows}


def test_text_classification_matches_hf_in_input_order(tmp_path, vocab):
    folder = save_pretrained(head('classifier'), str(tmp_path / 'sst'), vocab,
                             labels=['negative', 'positive'])
    ours = pipeline('text-classification', model=folder, batch_size=2)
    theirs = hf_pipe('text-classification', folder, top_k=None)
    expected = [by_label(rows) for rows in theirs(MIXED)]
    got = ours(MIXED, top_k=None)
    for rows, want in zip(got, expected):
        assert [r['score'] for r in rows] == sorted((r['score'] for r in rows), reverse=True)
        assert by_label(rows).keys() == want.keys()
        np.testing.assert_allclose([by_label(rows)[k] for k in want], list(want.values()),
                                   atol=1e-5, rtol=0)
    spread = np.array([[w['negative'], w['positive']] for w in expected])
    assert spread.std(axis=0).max() > 0.01  # texts get different answers: a real check
    # One at a time gives the same answers as the sorted batches.
    for text, rows in zip(MIXED, got):
        np.testing.assert_allclose([r['score'] for r in ours(text, top_k=None)],
                                   [r['score'] for r in rows], atol=1e-6, rtol=0)
    # HF's legacy shapes: a lone text -> [best], a list -> a best per text; top_k=k -> k best.
    legacy = hf_pipe('text-classification', folder)
    single = ours(TEXTS[0])
    assert isinstance(single, list) and len(single) == 1
    assert single[0]['label'] == legacy(TEXTS[0])[0]['label']
    assert abs(single[0]['score'] - legacy(TEXTS[0])[0]['score']) <= 1e-5
    assert [r['label'] for r in ours(MIXED)] == [r['label'] for r in legacy(MIXED)]
    assert [len(rows) for rows in ours(MIXED[:3], top_k=1)] == [1, 1, 1]
    assert ours(MIXED[:2], top_k=1)[1] == [got[1][0]]


def test_sentence_pairs_as_dicts_and_tuples(tmp_path, vocab):
    labels = ['entailment', 'neutral', 'contradiction']
    folder = save_pretrained(head('pair'), str(tmp_path / 'mnli'), vocab, labels=labels)
    dicts = [{'text': a, 'text_pair': b} for a, b in PAIRS]
    expected = [by_label(rows) for rows in hf_pipe('text-classification', folder,
                                                   top_k=None)(dicts)]
    ours = pipeline('text-classification', model=folder, top_k=None, batch_size=2)
    for got in (ours(dicts), ours(PAIRS), [ours(pair) for pair in PAIRS]):
        for rows, want in zip(got, expected):
            np.testing.assert_allclose([by_label(rows)[k] for k in labels],
                                       [want[k] for k in labels], atol=1e-5, rtol=0)


def test_regression_returns_the_raw_score(tmp_path, vocab):
    folder = save_pretrained(head('regression'), str(tmp_path / 'sts'), vocab,
                             labels=['similarity'])
    dicts = [{'text': a, 'text_pair': b} for a, b in PAIRS]
    theirs = hf_pipe('text-classification', folder, function_to_apply='none')(dicts)
    for task in ('regression', 'text-classification'):
        got = pipeline(task, model=folder)(dicts)
        assert [g['label'] for g in got] == ['similarity'] * len(PAIRS)
        np.testing.assert_allclose([g['score'] for g in got], [t['score'] for t in theirs],
                                   atol=1e-5, rtol=0)
    assert len({round(t['score'], 4) for t in theirs}) == len(PAIRS)
    with pytest.raises(ValueError, match='regression needs a BERTRegression model'):
        pipeline('regression', model=save_pretrained(head('classifier'), str(tmp_path / 'c'),
                                                     vocab))


@pytest.mark.parametrize('strategy', ['none', 'simple'])
def test_token_classification_matches_hf(tmp_path, vocab, strategy):
    labels = ['O', 'B-LOC', 'I-LOC', 'B-PER']
    block = randomized(head('token'), scale=0.5)
    folder = save_pretrained(block, str(tmp_path / 'ner'), vocab, labels=labels)
    texts = ['people in Paris and London love the city!', 'who acted in Zürich?',
             'the Boringly acted story of London']  # accents, [UNK], word pieces
    theirs = hf_pipe('token-classification', folder, aggregation_strategy=strategy)(texts)
    got = pipeline('token-classification', model=folder, aggregation_strategy=strategy,
                   batch_size=2)(texts)
    assert sum(len(rows) for rows in theirs) >= 5  # enough entities to compare
    for mine, want in zip(got, theirs):
        assert len(mine) == len(want)
        for a, b in zip(mine, want):
            assert {k: v for k, v in a.items() if k != 'score'} == \
                {k: (int(v) if k in ('start', 'end', 'index') else v)
                 for k, v in b.items() if k != 'score'}
            assert abs(a['score'] - float(b['score'])) <= 1e-5
    everything = pipeline('ner', model=folder, ignore_labels=[])(texts[0])
    assert len(everything) == len(vocab_tokens(vocab, texts[0]))
    tagger = pipeline('ner', model=folder, ignore_labels=[])
    with pytest.warns(UserWarning, match='longer than max_seq_length=24 are being truncated'):
        cut = tagger(' '.join(['paris'] * 30))
    assert len(cut) == 22 and tagger.truncation.truncated == 1


def vocab_tokens(vocab, text):
    return gluonbert.BERTTokenizer(vocab, lower=True)(text)


def hf_answer(folder, question, context, max_answer_len=15):
    """BertForQuestionAnswering + HF's own span decoding (select_starts_ends)."""
    from transformers.pipelines.document_question_answering import select_starts_ends
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertForQuestionAnswering.from_pretrained(folder).eval()
    encoded = tokenizer(question, context, return_offsets_mapping=True, return_tensors='pt')
    offsets = encoded.pop('offset_mapping')[0].numpy()
    with torch.no_grad():
        out = model(**encoded)
    p_mask = np.array([sid != 1 for sid in encoded.sequence_ids(0)], dtype=np.int64)
    p_mask[0] = 0  # HF's question-answering pipeline kept [CLS] unmasked
    starts, ends, scores, _ = select_starts_ends(
        out.start_logits.numpy(), out.end_logits.numpy(), p_mask,
        encoded['attention_mask'].numpy()[0], max_answer_len=max_answer_len)
    start, end = int(offsets[starts[0]][0]), int(offsets[ends[0]][1])
    return {'score': float(scores[0]), 'start': start, 'end': end,
            'answer': context[start:end]}


def test_question_answering_same_span_and_score_as_hf(tmp_path, vocab):
    folder = save_pretrained(randomized(head('qa'), scale=0.5), str(tmp_path / 'qa'), vocab)
    qa = pipeline('question-answering', model=folder)
    questions = [('where is Paris?', 'Paris is a city in London, and people love it.'),
                 ('who is sad?', 'the people of London are sad and slow.'),
                 ('what is fun?', 'a film is fun, but the story is boring.')]
    got = qa([{'question': q, 'context': c} for q, c in questions])
    for (question, context), answer in zip(questions, got):
        want = hf_answer(folder, question, context)
        assert (answer['start'], answer['end'], answer['answer']) == \
            (want['start'], want['end'], want['answer'])
        assert answer['answer'] == context[answer['start']:answer['end']] != ''
        assert abs(answer['score'] - want['score']) <= 1e-5
    assert qa(question=questions[0][0], context=questions[0][1]) == got[0]
    # A context longer than one window: SquadTransform's windows, the answer sliced from it.
    long_context = ' '.join(['the film was slow and the people were sad.'] * 4)
    answer = qa({'question': 'who was sad?', 'context': long_context})
    assert qa.transform.stats['contexts_split'] >= 1
    assert answer['answer'] == long_context[answer['start']:answer['end']] != ''


def test_feature_extraction_matches_hf(tmp_path, vocab):
    bert = randomized(tiny_model(use_decoder=False, use_classifier=False))
    folder = save_pretrained(bert, str(tmp_path / 'bert'), vocab)
    theirs = hf_pipe('feature-extraction', folder)(MIXED)
    tokens = pipeline('feature-extraction', model=folder, batch_size=3)(MIXED)
    means = pipeline('feature-extraction', model=folder, pooling='mean')(MIXED)
    cls = pipeline('feature-extraction', model=folder, pooling='cls', return_tensors=True)
    for text, mine, want, mean in zip(MIXED, tokens, theirs, means):
        want = np.array(want)  # (1, tokens, units)
        assert np.array(mine).shape == want.shape
        np.testing.assert_allclose(np.array(mine), want, atol=1e-5, rtol=0)
        np.testing.assert_allclose(mean, want[0].mean(axis=0), atol=1e-5, rtol=0)
        np.testing.assert_allclose(cls(text), want[0, 0], atol=1e-5, rtol=0)
    # a classifier folder serves feature extraction through its backbone
    classifier = save_pretrained(head('classifier'), str(tmp_path / 'sst'), vocab)
    vectors = pipeline('feature-extraction', model=classifier, pooling='mean')(TEXTS)
    assert np.array(vectors).shape == (len(TEXTS), 16)


def test_a_block_with_its_vocab_and_clear_errors(tmp_path, vocab):
    block = head('classifier')
    folder = save_pretrained(block, str(tmp_path / 'sst'), vocab, labels=['neg', 'pos'])
    from_folder = pipeline('text-classification', model=folder, top_k=None)(TEXTS)
    direct = pipeline('text-classification', model=block, vocab=vocab, top_k=None,
                      hybridize=False)
    assert [by_label(rows).keys() for rows in direct(TEXTS)] == \
        [{'LABEL_0', 'LABEL_1'}] * len(TEXTS)  # no label names without a folder
    np.testing.assert_allclose([[r['score'] for r in rows] for rows in direct(TEXTS)],
                               [[r['score'] for r in rows] for rows in from_folder], atol=1e-6)
    assert not block._active and block.bert.encoder.word_embed.weight.grad_req == 'write'
    loaded = from_pretrained(folder)  # a loaded block carries its vocab and labels
    assert pipeline('text-classification', model=loaded)(TEXTS[0])[0]['label'] in ('neg', 'pos')
    with pytest.raises(TypeError, match='needs its vocabulary: pass vocab='):
        pipeline('text-classification', model=block)
    with pytest.raises(ValueError, match="unknown task 'summarization'"):
        pipeline('summarization', model=folder)
    with pytest.raises(ValueError, match='token-classification needs a '
                                         'BERTForTokenClassification model'):
        pipeline('token-classification', model=folder)
    with pytest.raises(ValueError, match='top_k must be None'):
        pipeline('text-classification', model=folder)(TEXTS, top_k=0)
    with pytest.raises(ValueError, match="a dict input needs 'text'"):
        pipeline('text-classification', model=folder)({'sentence': 'a'})
    with pytest.raises(ValueError, match="between 2 and the position table's 24; got 30"):
        pipeline('text-classification', model=folder, max_length=30)
    short = pipeline('text-classification', model=folder, max_length=4, top_k=None)
    with pytest.warns(UserWarning, match='longer than max_seq_length=4'):
        cut = short(TEXTS[0])  # [CLS] this movie [SEP]
    np.testing.assert_allclose([r['score'] for r in cut],
                               [r['score'] for r in short('this movie')], atol=1e-6)
    with pytest.raises(ValueError, match='neither an existing folder nor a pretrained'):
        pipeline('text-classification', model=str(tmp_path / 'missing'))


def test_progress_bar_only_when_asked_or_many_on_a_terminal(tmp_path, vocab, capsys):
    folder = save_pretrained(head('classifier'), str(tmp_path / 'sst'), vocab)
    classify = pipeline('text-classification', model=folder)
    classify(MIXED * 40)  # 280 texts, but stderr is not a terminal under pytest
    assert capsys.readouterr().err == ''
    classify(MIXED, progress=True)
    assert '7/7' in capsys.readouterr().err
