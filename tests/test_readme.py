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


@pytest.mark.slow
def test_model_zoo_readme_command_lines_run(tmp_path):
    """model_zoo/bert/README.md's example: a text,label CSV with three flags, a resume to more
    epochs with only --output-dir, inference beside the training record."""
    with open(os.path.join(REPO, 'model_zoo', 'bert', 'README.md'), encoding='utf-8') as f:
        block = re.findall(r'```bash\n(.*?)```', f.read(), flags=re.S)[0]
    words = ['a great film', 'dull and slow', 'I loved it', 'a waste of time', 'wonderful cast',
             'boring plot']
    (tmp_path / 'reviews.csv').write_text('text,label\n' + ''.join(
        f'{w} number {i},{"positive" if j % 2 == 0 else "negative"}\n'
        for i in range(8) for j, w in enumerate(words)), encoding='utf-8')
    (tmp_path / 'unlabeled.csv').write_text('text\nwhat a film\nnot good\n', encoding='utf-8')
    env = dict(os.environ, PYTHONPATH=REPO)
    for line in commands(block):
        argv = shlex.split(line)
        argv = [sys.executable, os.path.join(REPO, argv[1])] + argv[2:] + [
            '--no-progress', '--max-len', '32', '--batch-size', '8']
        run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, f'{line}\n{run.stderr[-3000:]}'
    out = tmp_path / 'out' / 'finetune'
    config = json.loads((out / 'run_config.json').read_text())
    assert config['arguments']['epochs'] == 5  # the resume's longer schedule is on record
    assert len(config['commands']) == 2  # the first run's command and the resume's
    inference = [d for d in os.listdir(out) if d.startswith('inference-')]
    assert len(inference) == 1 and os.listdir(out / inference[0])
