"""The model store: verified cache, downloads from a real local HTTP mirror, locking, errors."""
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert import get_model, store
from gluonbert.store import FileLock, StoreError, default_root, fetch, facts
from gluonbert.store.download import gluonnlp_cache
from checkpoint_helpers import gluonnlp_model
from hub_server import LocalServer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD = np.random.RandomState(0).bytes(40000)
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()
NAME = f'bert_2_128_2_storetest-{SHA1[:8]}.params'
FAST = dict(retries=3, retry_wait=0.01, timeout=10)


def zipped(name, data):
    """A GluonNLP-style zip holding one file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


class Mirror(LocalServer):
    """A real HTTP server on 127.0.0.1 with GluonNLP's layout; counts requests per path.

    routes: URL path -> (body, mode); mode 'ok', 'lie' (claims more bytes than it sends) or
    'slow' (sends in small chunks with pauses, so downloads overlap).
    """

    def __init__(self):
        self.routes, self.hits = {}, {}
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            """Serves mirror.routes."""
            timeout = 20

            def do_GET(self):
                """Serve one route in its mode."""
                mirror.hits[self.path] = mirror.hits.get(self.path, 0) + 1
                if self.path not in mirror.routes:
                    self.send_error(404)
                    return
                body, mode = mirror.routes[self.path]
                self.send_response(200)
                self.send_header('Content-Length', str(len(body) + (100 if mode == 'lie' else 0)))
                self.end_headers()
                if mode == 'slow':
                    for start in range(0, len(body), 2000):
                        self.wfile.write(body[start:start + 2000])
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(Handler, path='/')

    def add(self, file_name, data, mode='ok', kind='models'):
        """Serve `data` zipped at GluonNLP's path for file_name; returns the URL path."""
        path = '/gluon/{}/{}.zip'.format('models' if kind == 'models' else 'dataset/vocab',
                                         file_name)
        self.routes[path] = (zipped(file_name, data), mode)
        return path



@pytest.fixture(name='mirror')
def fixture_mirror():
    server = Mirror()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No repo, GluonNLP's cache in a temp folder, and the HuggingFace Hub offline (so the
    GluonNLP pairs it also serves never reach the real Hub), unless a test sets them."""
    monkeypatch.delenv('GLUONBERT_REPO', raising=False)
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet-home'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf-home'))
    monkeypatch.delenv('HF_HUB_CACHE', raising=False)


def leftovers(root):
    """Files in root other than lock files."""
    return sorted(f for f in os.listdir(root) if not f.endswith('.lock'))


def test_cache_root_resolution(monkeypatch, tmp_path):
    assert default_root(tmp_path / 'x') == str(tmp_path / 'x')
    monkeypatch.setenv('GLUONBERT_HOME', str(tmp_path / 'home'))
    assert default_root() == str(tmp_path / 'home' / 'models')
    monkeypatch.delenv('GLUONBERT_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'user'))
    assert default_root() == str(tmp_path / 'user' / '.gluonbert' / 'models')


def test_fact_table_keeps_gluonnlp_names_and_checksums():
    assert store.params_file_name('bert_12_768_12', 'book_corpus_wiki_en_uncased') == \
        'bert_12_768_12_book_corpus_wiki_en_uncased-75cc780f.params'
    assert store.vocab_file_name('book_corpus_wiki_en_uncased') == \
        'book_corpus_wiki_en_uncased-a6607397.vocab'
    registered = set(gluonbert.list_models())
    assert all(model in registered for model, _ in facts.GLUONNLP_PARAMS)
    assert all(dataset in facts.GLUONNLP_VOCABS for _, dataset in facts.GLUONNLP_PARAMS)


def test_fact_table_matches_gluonnlp_0_10():
    pytest.importorskip('gluonnlp')
    from mxnet.gluon.model_zoo import model_store
    from gluonnlp.data.utils import _vocab_sha1
    for (model, dataset), sha1 in facts.GLUONNLP_PARAMS.items():
        assert model_store._model_sha1[f'{model}_{dataset}'] == sha1
    for dataset, (sha1, ext) in facts.GLUONNLP_VOCABS.items():
        assert _vocab_sha1[dataset][:2] == [sha1, ext]
    published = {name for name in model_store._model_sha1 if name.startswith('bert_')}
    ours = {f'{m}_{d}' for m, d in facts.GLUONNLP_PARAMS}
    assert published - ours == set()  # every GluonNLP BERT pair of a registered shape


def test_download_verifies_and_caches(mirror, tmp_path):
    route = mirror.add(NAME, PAYLOAD)
    path = fetch(NAME, SHA1, 'params', root=tmp_path / 'cache', repo=mirror.url, **FAST)
    assert path == str(tmp_path / 'cache' / NAME)
    with open(path, 'rb') as f:
        assert f.read() == PAYLOAD
    assert leftovers(tmp_path / 'cache') == [NAME]
    assert fetch(NAME, SHA1, 'params', root=tmp_path / 'cache', repo=mirror.url) == path
    assert mirror.hits[route] == 1  # the second call was served from the cache


def test_corrupted_download_is_retried_then_discarded(mirror, tmp_path):
    route = mirror.add(NAME, PAYLOAD[:-1] + b'x')
    with pytest.raises(StoreError) as err:
        fetch(NAME, SHA1, 'params', root=tmp_path, repo=mirror.url, **FAST)
    message = str(err.value)
    assert f'expected {SHA1}' in message and 'discarded' in message
    assert mirror.hits[route] == 3
    assert leftovers(tmp_path) == []


def test_truncated_archive_is_rejected(mirror, tmp_path):
    good = zipped(NAME, PAYLOAD)
    mirror.routes[f'/gluon/models/{NAME}.zip'] = (good[:len(good) // 2], 'ok')
    with pytest.raises(StoreError, match='not a complete zip archive'):
        fetch(NAME, SHA1, 'params', root=tmp_path, repo=mirror.url, **FAST)
    assert leftovers(tmp_path) == []


def test_connection_cut_short_is_detected(mirror, tmp_path):
    mirror.add(NAME, PAYLOAD, mode='lie')
    with pytest.raises(StoreError, match='connection broke|truncated download'):
        fetch(NAME, SHA1, 'params', root=tmp_path, repo=mirror.url, **FAST)
    assert leftovers(tmp_path) == []


def test_missing_on_the_mirror_fails_at_once(mirror, tmp_path):
    with pytest.raises(StoreError, match='404'):
        fetch(NAME, SHA1, 'params', root=tmp_path, repo=mirror.url, **FAST)
    assert sum(mirror.hits.values()) == 1


def test_offline_error_names_file_folders_and_remedies(tmp_path):
    with pytest.raises(StoreError) as err:
        fetch(NAME, SHA1, 'params', root=tmp_path / 'cache')
    message = str(err.value)
    for part in (NAME, str(tmp_path / 'cache'), gluonnlp_cache(), 'GLUONBERT_REPO',
                 f'gluon/models/{NAME}.zip', 'convert_checkpoint.py'):
        assert part in message


def test_local_file_with_wrong_sha1_is_never_used(mirror, tmp_path):
    bad = tmp_path / NAME
    bad.write_bytes(b'not the weights')
    with pytest.raises(StoreError, match='was moved to'):
        fetch(NAME, SHA1, 'params', root=tmp_path)
    assert not bad.exists() and (tmp_path / (NAME + '.sha1-mismatch')).exists()
    mirror.add(NAME, PAYLOAD)
    path = fetch(NAME, SHA1, 'params', root=tmp_path, repo=mirror.url, **FAST)
    assert hashlib.sha1(open(path, 'rb').read()).hexdigest() == SHA1


def test_gluonnlp_cache_is_searched(tmp_path):
    os.makedirs(gluonnlp_cache())
    with open(os.path.join(gluonnlp_cache(), NAME), 'wb') as f:
        f.write(PAYLOAD)
    assert fetch(NAME, SHA1, 'params', root=tmp_path / 'cache') == \
        os.path.join(gluonnlp_cache(), NAME)


_FETCH_SCRIPT = '''
import json, os, sys, time
from gluonbert.store.download import fetch
ready, go = sys.argv[1], sys.argv[2]
open(ready, 'w').close()
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.01)
start = time.time()
path = fetch(sys.argv[3], sys.argv[4], 'params', root=sys.argv[5], repo=sys.argv[6],
             retries=1, timeout=30)
print(json.dumps(dict(start=start, end=time.time(), path=path)))
'''


@pytest.mark.slow
def test_two_processes_fetching_at_once_download_once(mirror, tmp_path):
    route = mirror.add(NAME, PAYLOAD, mode='slow')  # about 2 s to send
    root = str(tmp_path / 'cache')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, '-c', _FETCH_SCRIPT, str(tmp_path / str(i)),
                               str(tmp_path / 'go'), NAME, SHA1, root, mirror.url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for i in range(2)]
    try:
        deadline = time.time() + 120
        while not all((tmp_path / str(i)).exists() for i in range(2)):
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                [p.stderr.read() for p in procs if p.poll() is not None]
            time.sleep(0.05)
        (tmp_path / 'go').touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    results = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert max(r['start'] for r in results) < min(r['end'] for r in results)  # they overlapped
    assert {r['path'] for r in results} == {os.path.join(root, NAME)}
    assert mirror.hits[route] == 1
    assert hashlib.sha1(open(os.path.join(root, NAME), 'rb').read()).hexdigest() == SHA1
    assert leftovers(root) == [NAME]


def test_pretrained_needs_a_known_pair():
    with pytest.raises(ValueError, match='pretrained=True needs dataset_name.*bert_6_384_12: '
                                         'all_minilm_l6_v2'):
        get_model('bert_12_768_12', pretrained=True)
    with pytest.raises(ValueError, match="no pretrained weights for 'bert_2_128_2'"):
        get_model('bert_2_128_2', dataset_name='book_corpus_wiki_en_uncased', pretrained=True)


def test_get_model_offline_names_the_hub_files_and_gluonnlp_file(tmp_path):
    with pytest.raises(StoreError) as err:
        get_model('bert_12_768_12', dataset_name='book_corpus_wiki_en_uncased', pretrained=True,
                  root=str(tmp_path / 'store'))
    message = str(err.value)
    assert '\n' not in message
    for part in ('config.json of google-bert/bert-base-uncased@86b5e093', 'HF_HUB_OFFLINE=1',
                 str(tmp_path / 'hf-home' / 'hub'), 'hf download google-bert/bert-base-uncased',
                 'bert_12_768_12_book_corpus_wiki_en_uncased-75cc780f.params',
                 str(tmp_path / 'store'), 'GLUONBERT_REPO'):
        assert part in message, part
    assert os.listdir(tmp_path / 'store') == []  # no lock file left behind


def test_failed_offline_fetch_leaves_no_lock_file(tmp_path):
    with pytest.raises(StoreError, match='not available offline'):
        fetch(NAME, SHA1, 'params', root=tmp_path / 'cache')
    assert os.listdir(tmp_path / 'cache') == []


def test_file_lock_excludes_and_removes_its_file(tmp_path):
    path = str(tmp_path / '.x.lock')
    inside, overlaps, rounds = [0], [], 40

    def worker():
        for _ in range(rounds):
            with FileLock(path, timeout=60):
                inside[0] += 1
                if inside[0] != 1:
                    overlaps.append(inside[0])
                time.sleep(0.001)
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert overlaps == [] and not any(t.is_alive() for t in threads)
    assert not os.path.exists(path)


def test_register_pretrained_validates_checksums():
    with pytest.raises(ValueError, match='not a hex sha1'):
        store.register_pretrained('bert_2_128_2', 'x', 'abc')


def test_get_model_pretrained_downloads_a_gluonnlp_checkpoint(mirror, tmp_path, monkeypatch):
    pytest.importorskip('gluonnlp')
    reference, their_vocab = gluonnlp_model()
    reference.save_parameters(str(tmp_path / 'source.params'))
    params_bytes = (tmp_path / 'source.params').read_bytes()
    vocab_bytes = their_vocab.to_json().encode('utf-8')
    from conftest import TINY
    shape = {k: v for k, v in TINY.items() if k not in ('vocab_size', 'dropout')}
    gluonbert.register_model('bert_2_16_4_storetest', **shape)
    params_sha1 = hashlib.sha1(params_bytes).hexdigest()
    vocab_sha1 = hashlib.sha1(vocab_bytes).hexdigest()
    store.register_pretrained('bert_2_16_4_storetest', 'tinycorpus', params_sha1, vocab_sha1)
    mirror.add(f'bert_2_16_4_storetest_tinycorpus-{params_sha1[:8]}.params', params_bytes)
    mirror.add(f'tinycorpus-{vocab_sha1[:8]}.vocab', vocab_bytes, kind='vocab')
    monkeypatch.setenv('GLUONBERT_REPO', mirror.url)
    monkeypatch.setenv('GLUONBERT_HOME', str(tmp_path / 'home'))

    model, vocab = get_model('bert_2_16_4_storetest', dataset_name='tinycorpus',
                             pretrained=True, dropout=0.0)
    assert sorted(os.listdir(tmp_path / 'home' / 'models')) == sorted(
        [f'bert_2_16_4_storetest_tinycorpus-{params_sha1[:8]}.params',
         f'tinycorpus-{vocab_sha1[:8]}.vocab'] + [
             f for f in os.listdir(tmp_path / 'home' / 'models') if f.endswith('.lock')])
    assert vocab.idx_to_token == their_vocab.idx_to_token
    assert model.use_decoder and model.use_classifier
    ids = mx.nd.array(np.random.RandomState(0).randint(0, len(vocab), (2, 7)))
    types, lengths, masked = mx.nd.zeros((2, 7)), mx.nd.array([7, 4]), mx.nd.array([[1], [3]])
    for got, expected in zip(model(ids, types, lengths, masked),
                             reference(ids, types, lengths, masked)):
        valid = np.arange(got.shape[1])[None] < lengths.asnumpy()[:, None] \
            if got.ndim == 3 and got.shape[1] == 7 else None
        got, expected = got.asnumpy(), expected.asnumpy()
        if valid is not None:
            got, expected = got[valid], expected[valid]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)
