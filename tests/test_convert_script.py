"""scripts/convert_checkpoint.py and gluonbert's own checkpoint folder."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gluonbert
from gluonbert import get_model
from gluonbert.convert import load_checkpoint
from gluonbert.convert_command import main
from checkpoint_helpers import (LENGTHS, MASKED, assert_valid_close, batch_arrays, gather_masked,
                                gluonnlp_model, hf_forward, nd, random_hf_model, write_vocab)
from conftest import TINY

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope='module')
def tiny_shape():
    """A registered name for conftest.TINY's shape."""
    gluonbert.register_model('bert_2_16_4_clitest', **{
        k: v for k, v in TINY.items() if k not in ('vocab_size', 'dropout')})


def hf_folder(model, folder):
    model.save_pretrained(str(folder))
    write_vocab(str(folder))
    return str(folder)


def test_hf_to_gluonbert_folder_then_get_model(tmp_path, capsys):
    source = random_hf_model(transformers.BertForPreTraining, seed=21)
    src = hf_folder(source, tmp_path / 'hf')
    assert main([src, str(tmp_path / 'out')]) == 0
    assert 'wrote gluonbert (BERTModel, 2 layers, 16 units, vocab 50)' in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / 'out')) == ['gluonbert_config.json', 'model.params',
                                                     'vocab.txt']
    model, vocab = get_model('bert_2_16_4_clitest', pretrained=str(tmp_path / 'out'),
                             dropout=0.0)
    assert len(vocab) == 50 and model.use_decoder and model.use_classifier
    ids, types, lengths = batch_arrays(seed=21)
    expected = hf_forward(source, ids, types, lengths)
    _, _, nsp, mlm = model(*nd(ids, types, lengths, MASKED))
    np.testing.assert_allclose(nsp.asnumpy(), expected.seq_relationship_logits.numpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(mlm.asnumpy(),
                               gather_masked(expected.prediction_logits.numpy(), MASKED),
                               atol=1e-4, rtol=0)


def test_fine_tuned_classifier_through_gluonbert_back_to_hf(tmp_path):
    source = random_hf_model(transformers.BertForSequenceClassification, seed=22, num_labels=4)
    src = hf_folder(source, tmp_path / 'hf')
    assert main([src, str(tmp_path / 'native')]) == 0
    assert load_checkpoint(str(tmp_path / 'native')).task_labels == 4
    assert main([str(tmp_path / 'native'), str(tmp_path / 'hf2'), '--to', 'hf']) == 0
    again = transformers.BertForSequenceClassification.from_pretrained(
        str(tmp_path / 'hf2')).eval()
    ids, types, lengths = batch_arrays(seed=22)
    np.testing.assert_allclose(hf_forward(again, ids, types, lengths).logits.numpy(),
                               hf_forward(source, ids, types, lengths).logits.numpy(),
                               atol=1e-5, rtol=0)


def test_gluonnlp_params_to_transformers(tmp_path):
    pytest.importorskip('gluonnlp')
    reference, nlp_vocab = gluonnlp_model()
    reference.save_parameters(str(tmp_path / 'bert.params'))
    (tmp_path / 'vocab.json').write_text(nlp_vocab.to_json(), encoding='utf-8')
    assert main([str(tmp_path / 'bert.params'), str(tmp_path / 'hf'), '--to', 'hf',
                 '--model', 'bert_2_16_4_clitest', '--vocab', str(tmp_path / 'vocab.json')]) == 0
    theirs = transformers.BertForPreTraining.from_pretrained(str(tmp_path / 'hf')).eval()
    with open(tmp_path / 'hf' / 'vocab.txt', encoding='utf-8') as f:
        assert f.read().split('\n')[:-1] == nlp_vocab.idx_to_token

    ids, types, lengths = batch_arrays(seed=23)
    expected = reference(*nd(ids, types, lengths, MASKED))
    got = hf_forward(theirs, ids, types, lengths, output_hidden_states=True)
    assert_valid_close(got.hidden_states[-1].numpy(), expected[0].asnumpy(), LENGTHS)
    np.testing.assert_allclose(got.seq_relationship_logits.numpy(), expected[2].asnumpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(gather_masked(got.prediction_logits.numpy(), MASKED),
                               expected[3].asnumpy(), atol=1e-4, rtol=0)


def test_script_runs_and_fails_clearly(tmp_path):
    source_model = random_hf_model(transformers.BertModel, seed=24)
    src = hf_folder(source_model, tmp_path / 'hf')
    script = os.path.join(REPO_ROOT, 'scripts', 'convert_checkpoint.py')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    done = subprocess.run([sys.executable, script, src, str(tmp_path / 'out'), '--to', 'hf'],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    converted = transformers.BertModel.from_pretrained(str(tmp_path / 'out')).state_dict()
    original = source_model.state_dict()
    assert converted.keys() == original.keys()
    for name, tensor in original.items():
        np.testing.assert_array_equal(converted[name].numpy(), tensor.numpy(), err_msg=name)

    os.remove(os.path.join(src, 'model.safetensors'))
    done = subprocess.run([sys.executable, script, src, str(tmp_path / 'out2')],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 2
    assert 'convert_checkpoint.py: error: ' in done.stderr and 'holds no weights' in done.stderr
    assert not os.path.exists(tmp_path / 'out2')


def test_existing_output_is_not_clobbered(tmp_path, capsys):
    src = hf_folder(random_hf_model(transformers.BertModel, seed=25), tmp_path / 'hf')
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'keep.txt').write_text('mine')
    assert main([src, str(tmp_path / 'out')]) == 2
    assert 'already exists' in capsys.readouterr().err
    assert os.listdir(tmp_path / 'out') == ['keep.txt']
    assert sorted(os.listdir(tmp_path)) == ['hf', 'out']  # no temp folder left behind
