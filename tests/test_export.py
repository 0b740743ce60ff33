"""Hybridized symbol export and re-import: same outputs at the export length and a longer one."""
import mxnet as mx
import numpy as np
import pytest

from gluonbert import BERTClassifier, BERTForQA, export_model, import_model
from conftest import as_list, random_batch, tiny_model


@pytest.mark.parametrize('kind', ['pretraining', 'classifier', 'qa'])
def test_export_round_trip_is_length_agnostic(tmp_path, kind):
    if kind == 'pretraining':
        block = tiny_model()
    else:
        bert = tiny_model(use_pooler=kind == 'classifier', use_decoder=False, use_classifier=False)
        block = BERTClassifier(bert, num_classes=3) if kind == 'classifier' else BERTForQA(bert)
        block.initialize_head()

    def inputs(seq_len):
        ids, types, lengths = random_batch(batch=3, seq_len=seq_len,
                                           lengths=[seq_len, seq_len - 2, 3], seed=seq_len)
        extra = [mx.nd.array([[0, 2], [1, 1], [2, 0]])] if kind == 'pretraining' else []
        return [ids, types, lengths] + extra

    expected = {n: as_list(block(*inputs(n))) for n in (8, 20)}
    prefix = str(tmp_path / 'model')
    symbol_file, params_file = export_model(block, prefix, inputs(8))
    imported = import_model(prefix, num_inputs=len(inputs(8)))
    import json
    assert [n['name'] for n in json.load(open(symbol_file))['nodes']
            if n['op'] == 'null' and n['name'].startswith('data')] == \
        [f'data{i}' for i in range(len(inputs(8)))]
    for seq_len in (8, 20):
        got = as_list(imported(*inputs(seq_len)))
        assert len(got) == len(expected[seq_len])
        for g, e in zip(got, expected[seq_len]):
            np.testing.assert_allclose(g, e, atol=1e-6, rtol=0)


def test_export_rejects_the_model_vocab_tuple(tmp_path):
    with pytest.raises(TypeError, match='returns \\(model, vocab\\)'):
        export_model((tiny_model(), None), str(tmp_path / 'x'), [])


def test_import_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing-symbol.json'):
        import_model(str(tmp_path / 'nothing'))


def test_inference_only_import_has_no_gradient_buffers_and_the_same_outputs(tmp_path):
    block = tiny_model()
    inputs = list(random_batch()) + [mx.nd.array([[0, 2], [1, 1], [2, 0]])]
    expected = as_list(block(*inputs))
    export_model(block, str(tmp_path / 'model'), inputs)
    trainable = import_model(str(tmp_path / 'model'), num_inputs=4)
    frozen = import_model(str(tmp_path / 'model'), num_inputs=4, for_training=False)
    assert all(p.grad_req == 'write' and p.list_grad() for p in
               trainable.collect_params().values())
    for param in frozen.collect_params().values():
        assert param.grad_req == 'null' and param._grad is None
    for got, want in zip(as_list(frozen(*inputs)), expected):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
