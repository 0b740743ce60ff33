"""Every example in README.md runs: the Python blocks as written, the command lines with their
data shrunk (fewer sentences, one short epoch) so the suite stays fast."""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO, shared_path

README = os.path.join(REPO, 'README.md')
# appended to the fine-tuning command: the same run on a few sentences
SHRINK = ['--max-train-samples', '32', '--epochs', '1', '--max-len', '32', '--batch-size', '8',
          '--no-progress']


def blocks(language):
    """The README's fenced code blocks in `language`, in order."""
    with open(README, encoding='utf-8') as f:
        return re.findall(rf'```{language}\n(.*?)```', f.read(), flags=re.S)


def commands(block):
    """The commands of a bash block: comments dropped, continuation lines joined."""
    text = re.sub(r'\\\n\s*', ' ', block)
    lines = [line.split('  #')[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith('#')]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = blocks('python')
    assert found, 'README.md has no python example'
    for code in found:
        namespace = {}
        exec(compile(code, README, 'exec'), namespace)
    assert namespace['logits'].shape == (1, 2)
    assert sorted(os.listdir(tmp_path / 'out' / 'my-model'))[:2] == ['config.json', 'export']


@pytest.mark.slow
def test_readme_command_lines_run(tmp_path):
    shared_path('glue', 'MRPC', 'dev.tsv')  # skips with a reason where ../shared is absent
    env = dict(os.environ, PYTHONPATH=REPO)
    gluonbert_cli = [sys.executable, '-m', 'gluonbert.cli']
    cluster = [block for block in blocks('bash') if 'finetune_classifier.py' in block]
    assert cluster, 'README.md has no command-line example'
    ran = []
    for line in commands(cluster[0]):
        argv = shlex.split(line.replace('../shared/', os.path.join(os.path.dirname(REPO),
                                                                   'shared') + '/'))
        if argv[0] == 'python':
            argv = [sys.executable, os.path.join(REPO, argv[1])] + argv[2:] + SHRINK
        elif argv[0] == 'gluonbert':
            argv = gluonbert_cli + argv[1:]
        run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, f'{line}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}'
        ran.append((argv, run.stdout))
    assert len(ran) >= 7
    predictions = [json.loads(line) for argv, out in ran if '--json' in argv
                   for line in out.splitlines()]
    assert len(predictions) == 408  # MRPC dev, every pair labelled with the task's names
    assert {p['label'] for p in predictions} <= {'equivalent', 'not_equivalent'}
    assert (tmp_path / 'sim.png').stat().st_size > 0
    assert (tmp_path / 'minilm.onnx').stat().st_size > 1_000_000
    assert os.path.isdir(tmp_path / 'out' / 'mrpc' / 'int8')


def test_readme_mapping_for_sentence_transformers_users_runs():
    """The sentence-transformers row of the README's mapping, as written there."""
    import gluonbert
    sentences = ['A man plays a guitar.', 'Someone plays an instrument.', 'The sky is blue.']
    embeddings = gluonbert.SentenceEncoder('all_minilm_l6_v2').encode(sentences)
    assert embeddings.shape == (3, 384)
    scores = gluonbert.cos_sim(embeddings[:1], embeddings)
    hits = gluonbert.semantic_search(embeddings[:1], embeddings, top_k=2)
    assert [hit['corpus_id'] for hit in hits[0]] == [0, 1]  # itself, then the guitar paraphrase
    assert abs(float(scores[0][0]) - 1) < 1e-5
