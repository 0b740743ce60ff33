"""Checkpoints from the HuggingFace Hub, through a real local server answering the Hub's file
API as huggingface_hub calls it (the real Hub is never contacted)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from checkpoint_helpers import tiny_vocab
from conftest import TINY, tiny_model
from hub_server import FakeHub

import gluonbert
from gluonbert import get_model, store
from gluonbert.convert.common import ConversionError
from gluonbert.data import BERTVocab
from gluonbert.convert.hf import save_hf_checkpoint
from gluonbert.store import StoreError, facts
from gluonbert.store.hub import parse_hf_spec, resolve_hf_spec

REPO = 'test-org/tiny-bert'
OLD, NEW = 'a' * 39 + '1', 'b' * 39 + '2'  # two commits; `main` points at NEW
MODEL, DATASET = 'bert_2_16_4_hubtest', 'tiny_hub_corpus'


def hf_folder_files(tmp_path, seed, name):
    """{file name: bytes} of a tiny BertForPreTraining saved with gluonbert's HF writer, and
    the model."""
    mx.random.seed(seed)
    model = tiny_model()
    save_hf_checkpoint(model, tiny_vocab(), str(tmp_path / name))
    return {f: (tmp_path / name / f).read_bytes() for f in os.listdir(tmp_path / name)}, model


@pytest.fixture(name='checkpoints', scope='module')
def fixture_checkpoints(tmp_path_factory):
    """Two tiny HF folders (the OLD and NEW commits) and the models they were written from."""
    folder = tmp_path_factory.mktemp('hf')
    old, old_model = hf_folder_files(folder, 1, 'old')
    new, new_model = hf_folder_files(folder, 2, 'new')
    return {OLD: (old, old_model), NEW: (new, new_model)}


@pytest.fixture(name='hub')
def fixture_hub(checkpoints, monkeypatch, tmp_path):
    """The fake Hub serving REPO, with HF_ENDPOINT, HF_HOME and the store in tmp_path."""
    server = FakeHub()
    server.add_repo(REPO, {commit: dict(files) for commit, (files, _) in checkpoints.items()},
                    {'main': NEW})
    monkeypatch.setenv('HF_ENDPOINT', server.url)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """Caches in tmp_path, no mirror, HF_ENDPOINT on a closed local port unless a test starts
    the fake Hub (conftest restores the fact tables and registered models afterwards)."""
    for name in ('GLUONBERT_REPO', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_HUB_CACHE'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf-home'))
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet-home'))
    shape = {k: v for k, v in TINY.items() if k not in ('vocab_size', 'dropout')}
    gluonbert.register_model(MODEL, **shape)
    store.register_hub_pretrained(MODEL, DATASET, REPO, OLD)


def store_root(tmp_path):
    """The gluonbert store of a test (get_model's root=)."""
    return str(tmp_path / 'store')


def store_files(tmp_path):
    """The files in the gluonbert store."""
    root = store_root(tmp_path)
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def outputs(model, seed=0):
    """All of a model's outputs on a fixed padded batch, as numpy arrays."""
    rng = np.random.RandomState(seed)
    ids = mx.nd.array(rng.randint(0, TINY['vocab_size'], (2, 7)))
    types, lengths, masked = mx.nd.zeros((2, 7)), mx.nd.array([7, 4]), mx.nd.array([[1], [3]])
    result = model(ids, types, lengths, masked)
    return [out.asnumpy() for out in (result if isinstance(result, (list, tuple)) else [result])]


def assert_same_model(ours, reference):
    """Same outputs (sequence on valid positions, pooled, NSP, MLM) as the reference."""
    valid = np.arange(7)[None] < np.array([7, 4])[:, None]
    got, expected = outputs(ours), outputs(reference)
    assert len(got) == len(expected) == 4
    np.testing.assert_allclose(got[0][valid], expected[0][valid], atol=1e-5, rtol=1e-4)
    for g, e in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-4)


def test_dataset_name_downloads_converts_once_then_loads_without_the_server(hub, checkpoints,
                                                                           tmp_path):
    model, vocab = get_model(MODEL, dataset_name=DATASET, pretrained=True, dropout=0.0,
                             root=store_root(tmp_path))
    assert model.use_pooler and model.use_decoder and model.use_classifier  # as GluonNLP's
    assert_same_model(model, checkpoints[OLD][1])  # the pinned commit, not main
    assert vocab.idx_to_token == tiny_vocab().idx_to_token
    assert all(OLD in path for path in hub.fetched('model.safetensors'))
    assert len(hub.fetched('model.safetensors')) == 1
    files = store_files(tmp_path)
    assert [f for f in files if f.endswith('.lock')] == []
    assert f'{MODEL}_{DATASET}.json' in files
    with open(os.path.join(store_root(tmp_path), f'{MODEL}_{DATASET}.json'),
              encoding='utf-8') as f:
        manifest = json.load(f)
    assert (manifest['source_repo'], manifest['source_revision']) == (REPO, OLD)
    assert sorted(files) == sorted([f'{MODEL}_{DATASET}.json', manifest['file'],
                                    manifest['vocab_file']])

    hub.close()  # from now on, any network access would fail
    again, vocab_again = get_model(MODEL, dataset_name=DATASET, pretrained=True, dropout=0.0,
                                   use_decoder=False, use_classifier=False,
                                   root=store_root(tmp_path))
    assert not again.use_decoder and not again.use_classifier
    assert vocab_again.idx_to_token == vocab.idx_to_token
    np.testing.assert_array_equal(again.encoder.word_embed.weight.data().asnumpy(),
                                  model.encoder.word_embed.weight.data().asnumpy())
    assert store_files(tmp_path) == files  # nothing converted again


def test_offline_without_cache_names_file_cache_endpoint_and_the_fix(hub, monkeypatch,
                                                                     tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(StoreError) as err:
        get_model(MODEL, dataset_name=DATASET, pretrained=True, root=store_root(tmp_path))
    message = str(err.value)
    cache = str(tmp_path / 'hf-home' / 'hub')
    assert '\n' not in message
    command = (f'HF_HUB_OFFLINE=0 HF_ENDPOINT={hub.url} hf download {REPO} config.json '
               f'vocab.txt model.safetensors --revision {OLD} --cache-dir {cache}')
    for part in ('config.json', cache, hub.url, 'HF_HUB_OFFLINE=1', command):
        assert part in message, part
    assert hub.requests == []  # offline means offline
    assert [f for f in store_files(tmp_path) if f.endswith('.lock')] == []


def test_offline_with_cached_files_needs_no_server(hub, checkpoints, monkeypatch, tmp_path):
    folder = resolve_hf_spec(f'hf:{REPO}@{OLD}')
    hub.close()
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    assert resolve_hf_spec(f'hf:{REPO}@{OLD}') == folder
    model, _ = get_model(MODEL, dataset_name=DATASET, pretrained=True, dropout=0.0,
                             root=store_root(tmp_path))
    assert_same_model(model, checkpoints[OLD][1])


@pytest.mark.slow
def test_unreachable_hub_error_names_the_endpoint():
    # about 25 s: huggingface_hub retries a refused connection with backoff before giving up
    with pytest.raises(StoreError) as err:
        resolve_hf_spec(f'hf:{REPO}@{OLD}')
    message = str(err.value)
    assert 'downloading it from http://127.0.0.1:9 failed (ConnectError' in message
    assert '\n' not in message
    assert f'HF_ENDPOINT=http://127.0.0.1:9 hf download {REPO}' in message


def test_an_endpoint_that_is_not_a_hub_is_named(hub, monkeypatch):
    monkeypatch.setenv('HF_ENDPOINT', hub.url + '/plain')  # answers, but not like the Hub
    with pytest.raises(StoreError, match=f'downloading it from {hub.url}/plain failed .*'
                                         'X-Repo-Commit'):
        resolve_hf_spec(f'hf:{REPO}@{OLD}')


def test_corrupted_download_is_refused_and_fetched_again(hub, checkpoints, tmp_path):
    hub.corrupt.add('model.safetensors')
    with pytest.raises(StoreError, match='model.safetensors of .* is damaged: its sha256 is '
                                         '[0-9a-f]{64} but the Hub published'):
        get_model(MODEL, dataset_name=DATASET, pretrained=True, root=store_root(tmp_path))
    blobs = tmp_path / 'hf-home' / 'hub' / 'models--test-org--tiny-bert' / 'blobs'
    assert len(os.listdir(blobs)) == 2  # config.json and vocab.txt; the bad blob is gone
    assert [f for f in store_files(tmp_path) if not f.endswith('.lock')] == []
    hub.corrupt.clear()
    model, _ = get_model(MODEL, dataset_name=DATASET, pretrained=True, dropout=0.0,
                             root=store_root(tmp_path))
    assert_same_model(model, checkpoints[OLD][1])


def test_pinned_sha256_mismatch_is_refused(hub, tmp_path):
    store.register_hub_pretrained(MODEL, DATASET, REPO, OLD, sha256={'vocab.txt': '0' * 64})
    with pytest.raises(StoreError, match='vocab.txt of .* but gluonbert pins 0{64}'):
        get_model(MODEL, dataset_name=DATASET, pretrained=True, root=store_root(tmp_path))


def test_revision_is_honoured(hub, checkpoints):
    old = resolve_hf_spec(f'hf:{REPO}@{OLD}')
    new = resolve_hf_spec(f'hf:{REPO}')  # main
    assert os.path.basename(old) == OLD and os.path.basename(new) == NEW
    for folder, commit in ((old, OLD), (new, NEW)):
        assert sorted(os.listdir(folder)) == ['config.json', 'model.safetensors', 'vocab.txt']
        with open(os.path.join(folder, 'model.safetensors'), 'rb') as f:
            assert f.read() == checkpoints[commit][0]['model.safetensors']
    model, _ = get_model(MODEL, pretrained=new, dropout=0.0)
    assert_same_model(model, checkpoints[NEW][1])
    assert any(f'/resolve/{OLD}/' in path for _, path in hub.requests)


def test_spec_must_name_a_repo_and_revision_must_exist(hub):
    assert parse_hf_spec('hf:org/name') == ('org/name', 'main')
    assert parse_hf_spec('hf:org/na.me-2@v1.0') == ('org/na.me-2', 'v1.0')
    for bad in ('org/name', 'hf:name', 'hf:org/name@', 'hf:a/b/c'):
        with pytest.raises(ValueError, match='hf:ORG/NAME@REVISION'):
            parse_hf_spec(bad)
    with pytest.raises(StoreError, match="has no revision 'v9'"):
        resolve_hf_spec(f'hf:{REPO}@v9')
    with pytest.raises(StoreError, match='has no repository test-org/absent'):
        resolve_hf_spec('hf:test-org/absent')


def test_non_bert_config_is_refused_before_weights_are_downloaded(hub):
    config = json.dumps(dict(model_type='gpt2', n_layer=2)).encode()
    hub.add_repo('test-org/tiny-gpt', {OLD: {'config.json': config, 'vocab.txt': b'a\n',
                                             'model.safetensors': b'x' * 200}}, {'main': OLD})
    with pytest.raises(ConversionError, match="hf:test-org/tiny-gpt@main config.json: "
                                              "model_type is 'gpt2'; only BERT"):
        resolve_hf_spec('hf:test-org/tiny-gpt')
    assert hub.fetched('model.safetensors') == []


def test_pytorch_bin_is_used_when_a_revision_has_no_safetensors(hub, checkpoints):
    files = dict(checkpoints[OLD][0])
    files['pytorch_model.bin'] = files.pop('model.safetensors')  # only the name matters here
    hub.add_repo('test-org/bin-only', {OLD: files}, {'main': OLD})
    folder = resolve_hf_spec('hf:test-org/bin-only')
    assert sorted(os.listdir(folder)) == ['config.json', 'pytorch_model.bin', 'vocab.txt']


def test_dataset_vocabulary_comes_from_the_hub(hub):
    assert store.load_vocab(DATASET).idx_to_token == tiny_vocab().idx_to_token
    assert 'tiny_hub_corpus' in store.list_pretrained()[MODEL]


def test_a_gluonnlp_mirror_takes_precedence_over_the_hub(hub, monkeypatch, tmp_path):
    store.register_pretrained(MODEL, DATASET, '1' * 40)
    monkeypatch.setenv('GLUONBERT_REPO', hub.url)  # a mirror without the file: 404
    with pytest.raises(StoreError, match=f'{MODEL}_{DATASET}-11111111.params.*404'):
        get_model(MODEL, dataset_name=DATASET, pretrained=True, root=store_root(tmp_path))
    assert not any('/resolve/' in path for _, path in hub.requests)
    monkeypatch.delenv('GLUONBERT_REPO')
    with pytest.raises(StoreError, match=f'damaged.*or copy GluonNLP 0.10.s '
                                         f'{MODEL}_{DATASET}-11111111.params into'):
        hub.corrupt.add('model.safetensors')  # the Hub is used now; its error names both ways
        get_model(MODEL, dataset_name=DATASET, pretrained=True, root=store_root(tmp_path))


def test_gluonnlp_names_map_to_google_bert_repositories():
    expected = {'book_corpus_wiki_en_uncased': 'google-bert/bert-base-uncased',
                'book_corpus_wiki_en_cased': 'google-bert/bert-base-cased',
                'wiki_multilingual_uncased': 'google-bert/bert-base-multilingual-uncased',
                'wiki_multilingual_cased': 'google-bert/bert-base-multilingual-cased',
                'wiki_cn_cased': 'google-bert/bert-base-chinese'}
    for dataset, repo in expected.items():
        assert facts.HUB[('bert_12_768_12', dataset)].repo == repo
    assert facts.HUB[('bert_24_1024_16', 'book_corpus_wiki_en_uncased')].repo == \
        'google-bert/bert-large-uncased'
    assert facts.HUB[('bert_24_1024_16', 'book_corpus_wiki_en_cased')].repo == \
        'google-bert/bert-large-cased'
    assert all(key in facts.GLUONNLP_PARAMS for key in facts.HUB if key[0] != MODEL)


def test_a_vocabulary_in_another_order_is_refused_for_hub_weights(hub, checkpoints, tmp_path):
    """Hub weights follow their vocab.txt's order; a vocabulary with the same tokens in another
    order (GluonNLP's, for Google's weights) would scramble the embedding rows silently."""
    tokens = tiny_vocab().idx_to_token
    reordered = BERTVocab(tokens[:5] + tokens[5:][::-1])
    with pytest.raises(ConversionError, match='orders .* tokens differently; leave vocab= out'):
        get_model(MODEL, dataset_name=DATASET, pretrained=True, vocab=reordered,
                  root=store_root(tmp_path))
    model, vocab = get_model(MODEL, dataset_name=DATASET, pretrained=True, vocab=tiny_vocab(),
                             root=store_root(tmp_path))  # the same order is fine
    assert vocab.idx_to_token == tokens
