"""GluonNLP 0.10's BERT sentence-pair tutorial runs with `import gluonbert as nlp`: its own
get_model line gets BERT-base weights through the (local, fake) HuggingFace Hub, converts them
once, fine-tunes on MRPC pairs and predicts."""
import os
import re
import subprocess
import sys

import mxnet as mx
import pytest
from conftest import REPO, shared_path
from hub_server import FakeHub

from gluonbert import get_model
from gluonbert.convert.hf import save_hf_checkpoint
from gluonbert.data.vocab import BERTVocab, bundled_vocab_path
from gluonbert.store import facts

SCRIPT = os.path.join(REPO, 'docs', 'examples', 'gluonnlp_sentence_pair_tutorial.py')
pytestmark = pytest.mark.slow


@pytest.fixture(name='hub')
def fixture_hub(tmp_path):
    """A local Hub serving a random-weight BERT-base (with both pretraining heads and Google's
    uncased vocabulary) as google-bert/bert-base-uncased at the commit gluonbert pins."""
    source = facts.HUB[('bert_12_768_12', 'book_corpus_wiki_en_uncased')]
    mx.random.seed(3)
    model, _ = get_model('bert_12_768_12', pretrained=False, use_pooler=True, use_decoder=True,
                         use_classifier=True)
    folder = tmp_path / 'bert-base-uncased'
    save_hf_checkpoint(model, BERTVocab.from_file(bundled_vocab_path('en_uncased')), str(folder))
    del model
    files = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    hub = FakeHub()
    hub.add_repo(source.repo, {source.revision: files}, {'main': source.revision})
    yield hub
    hub.close()


def test_tutorial_fine_tunes_and_predicts_with_weights_from_the_hub(hub, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    with open(shared_path('glue', 'MRPC', 'dev.tsv'), encoding='utf-8-sig') as f:
        lines = f.readlines()[:17]  # the header and 16 pairs
    (work / 'dev.tsv').write_text('\ufeff' + ''.join(lines), encoding='utf-8')
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / 'hf-home'),
               GLUONBERT_HOME=str(tmp_path / 'gluonbert-home'),
               MXNET_HOME=str(tmp_path / 'mxnet-home'), PYTHONPATH=REPO)
    env.pop('HF_HUB_OFFLINE', None)
    env.pop('GLUONBERT_REPO', None)
    run = subprocess.run([sys.executable, SCRIPT], cwd=work, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    epochs = re.findall(r'\[Epoch (\d)\] loss=([0-9.]+), lr=([0-9.]+), acc=([0-9.]+)', run.stdout)
    assert [e[0] for e in epochs] == ['0', '1', '2'], run.stdout
    assert all(0 < float(loss) < 5 and float(lr) == 5e-6 for _, loss, lr, _ in epochs)
    predictions = re.findall(r'prediction (\d): ([01]) \((.*)\)', run.stdout)
    assert [p[0] for p in predictions] == ['0', '1', '2', '3']
    assert predictions[0][2] == lines[1].split('\t')[3][:40]
    assert '[CLS] token id = 101' in run.stdout  # Google's uncased vocabulary, from the Hub
    # the weights came through the tutorial's get_model line, from the Hub, once
    assert hub.fetched('model.safetensors')
