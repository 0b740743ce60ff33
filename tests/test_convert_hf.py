"""HuggingFace checkpoints: read (safetensors, .bin), map every head, write back, fail clearly."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from gluonbert import get_model
from gluonbert.convert import ConversionError
from gluonbert.convert.hf import read_hf_checkpoint, save_hf_checkpoint
from gluonbert.convert.layout import load_into, model_from_checkpoint
from gluonbert.convert.safetensors_format import read_safetensors, write_safetensors
from gluonbert.model import BERTClassifier, BERTForQA, BERTForTokenClassification, BERTRegression
from checkpoint_helpers import (LENGTHS, MASKED, assert_valid_close, batch_arrays, gather_masked,
                                hf_forward, nd, random_hf_model, tiny_vocab, write_vocab)
from conftest import tiny_model

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')


def save_hf(model, directory, bin_format=False):
    """save_pretrained (safetensors) or the legacy pytorch_model.bin, plus vocab.txt."""
    os.makedirs(directory, exist_ok=True)
    if bin_format:
        model.config.save_pretrained(directory)
        torch.save(model.state_dict(), os.path.join(directory, 'pytorch_model.bin'))
    else:
        model.save_pretrained(directory)
    write_vocab(directory)
    return str(directory)


@pytest.mark.parametrize('bin_format', [False, True], ids=['safetensors', 'pytorch_bin'])
def test_bert_for_pretraining_gives_transformers_outputs(tmp_path, bin_format):
    reference = random_hf_model(transformers.BertForPreTraining)
    checkpoint = read_hf_checkpoint(save_hf(reference, tmp_path / 'hf', bin_format))
    assert checkpoint.heads == {'pooler', 'classifier', 'decoder'}
    ours = model_from_checkpoint(checkpoint, dropout=0.0)

    ids, types, lengths = batch_arrays()
    expected = hf_forward(reference, ids, types, lengths, output_hidden_states=True)
    seq, pooled, nsp, mlm = ours(*nd(ids, types, lengths, MASKED))
    assert_valid_close(seq.asnumpy(), expected.hidden_states[-1].numpy(), LENGTHS)
    np.testing.assert_allclose(nsp.asnumpy(), expected.seq_relationship_logits.numpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(mlm.asnumpy(),
                               gather_masked(expected.prediction_logits.numpy(), MASKED),
                               atol=1e-4, rtol=0)
    assert np.abs(nsp.asnumpy()).max() > 0.1  # random heads: a real signal, not zeros


def test_bert_model_sequence_and_pooled_output(tmp_path):
    reference = random_hf_model(transformers.BertModel, seed=1, hidden_act='gelu_new')
    checkpoint = read_hf_checkpoint(save_hf(reference, tmp_path / 'hf'))
    assert checkpoint.heads == {'pooler'} and checkpoint.hparams['activation'] == 'gelu_tanh'
    ours = model_from_checkpoint(checkpoint, dropout=0.0)
    assert not ours.use_decoder and not ours.use_classifier

    ids, types, lengths = batch_arrays(seed=1)
    expected = hf_forward(reference, ids, types, lengths)
    seq, pooled = ours(*nd(ids, types, lengths))
    assert_valid_close(seq.asnumpy(), expected.last_hidden_state.numpy(), LENGTHS)
    np.testing.assert_allclose(pooled.asnumpy(), expected.pooler_output.numpy(), atol=1e-4,
                               rtol=0)


def test_sequence_classification_loads_into_bert_classifier(tmp_path):
    reference = random_hf_model(transformers.BertForSequenceClassification, seed=2, num_labels=3)
    checkpoint = read_hf_checkpoint(save_hf(reference, tmp_path / 'hf'))
    assert checkpoint.task == 'sequence_classification' and checkpoint.task_labels == 3
    with pytest.warns(UserWarning, match=r'holds a fine-tuned sequence_classification head '
                                         r'\(3 outputs\), which is dropped: only the backbone'):
        backbone = model_from_checkpoint(checkpoint, use_decoder=False, use_classifier=False,
                                         dropout=0.0)
    classifier = BERTClassifier(backbone, num_classes=3)
    classifier.initialize_head()
    load_into(classifier, checkpoint)

    ids, types, lengths = batch_arrays(seed=2)
    expected = hf_forward(reference, ids, types, lengths).logits.numpy()
    np.testing.assert_allclose(classifier(*nd(ids, types, lengths)).asnumpy(), expected,
                               atol=1e-4, rtol=0)
    with pytest.warns(UserWarning, match='gluonbert.from_pretrained'):
        qa = BERTForQA(model_from_checkpoint(checkpoint, use_pooler=False, use_decoder=False,
                                             use_classifier=False))
    qa.initialize_head()
    with pytest.raises(ConversionError, match='sequence_classification head but BERTForQA'):
        load_into(qa, checkpoint, ignore_heads={'pooler'})


def test_round_trip_pretraining_model_to_transformers(tmp_path):
    ours = tiny_model(dropout=0.0, activation='gelu_tanh')
    for param in ours.collect_params().values():  # non-trivial biases and LayerNorms
        param.set_data(mx.nd.random.normal(0, 0.3, shape=param.shape))
    architecture = save_hf_checkpoint(ours, tiny_vocab(), str(tmp_path / 'out'))
    assert architecture == 'BertForPreTraining'
    assert sorted(os.listdir(tmp_path)) == ['out']  # no temp folder left behind
    theirs, info = transformers.BertForPreTraining.from_pretrained(
        str(tmp_path / 'out'), output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys'] and \
        not info['mismatched_keys']
    theirs.eval()

    ids, types, lengths = batch_arrays(seed=3)
    expected = hf_forward(theirs, ids, types, lengths, output_hidden_states=True)
    seq, pooled, nsp, mlm = ours(*nd(ids, types, lengths, MASKED))
    assert_valid_close(seq.asnumpy(), expected.hidden_states[-1].numpy(), LENGTHS)
    np.testing.assert_allclose(nsp.asnumpy(), expected.seq_relationship_logits.numpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(mlm.asnumpy(),
                               gather_masked(expected.prediction_logits.numpy(), MASKED),
                               atol=1e-4, rtol=0)
    # BertModel reads the same folder (it ignores the heads).
    encoder_only = transformers.BertModel.from_pretrained(str(tmp_path / 'out')).eval()
    np.testing.assert_allclose(hf_forward(encoder_only, ids, types, lengths).pooler_output,
                               pooled.asnumpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize('head', ['classifier', 'regression', 'token', 'qa'])
def test_round_trip_task_models_to_transformers(tmp_path, head):
    uses_pooler = head in ('classifier', 'regression')
    backbone = tiny_model(use_pooler=uses_pooler, use_decoder=False, use_classifier=False,
                          dropout=0.0)
    block, hf_cls, labels = {
        'classifier': (lambda: BERTClassifier(backbone, num_classes=3),
                       transformers.BertForSequenceClassification, 3),
        'regression': (lambda: BERTRegression(backbone),
                       transformers.BertForSequenceClassification, 1),
        'token': (lambda: BERTForTokenClassification(backbone, num_classes=5),
                  transformers.BertForTokenClassification, 5),
        'qa': (lambda: BERTForQA(backbone), transformers.BertForQuestionAnswering, 2)}[head]
    block = block()
    block.initialize_head(init=mx.init.Normal(0.5))
    save_hf_checkpoint(block, tiny_vocab(), str(tmp_path / 'out'))
    theirs, info = hf_cls.from_pretrained(str(tmp_path / 'out'), output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys']
    assert theirs.config.num_labels == labels
    theirs.eval()

    ids, types, lengths = batch_arrays(seed=4)
    expected = hf_forward(theirs, ids, types, lengths)
    got = block(*nd(ids, types, lengths))
    if head == 'qa':
        assert_valid_close(got[0].asnumpy(), expected.start_logits.numpy(), LENGTHS)
        assert_valid_close(got[1].asnumpy(), expected.end_logits.numpy(), LENGTHS)
    elif head == 'token':
        assert_valid_close(got.asnumpy(), expected.logits.numpy(), LENGTHS)
    else:
        np.testing.assert_allclose(got.asnumpy(), expected.logits.numpy(), atol=1e-4, rtol=0)
    # ... and back: the written folder loads into a fresh block of the same kind.
    checkpoint = read_hf_checkpoint(str(tmp_path / 'out'))
    again = type(block)(tiny_model(use_pooler=uses_pooler, use_decoder=False,
                                   use_classifier=False, dropout=0.0),
                        **({'num_classes': labels} if head in ('classifier', 'token') else {}))
    again.initialize_head()
    load_into(again, checkpoint)
    for name, param in block._collect_params_with_prefix().items():
        np.testing.assert_array_equal(again._collect_params_with_prefix()[name].data().asnumpy(),
                                      param.data().asnumpy())


def test_get_model_loads_a_hf_folder_like_from_pretrained(tmp_path):
    reference = random_hf_model(transformers.BertModel, seed=5, vocab_size=30522,
                                hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=512, max_position_embeddings=512)
    reference.save_pretrained(str(tmp_path / 'hf'))
    bundled = get_model('bert_2_128_2', pretrained=False)[1]
    bundled.to_file(str(tmp_path / 'hf' / 'vocab.txt'))
    model, vocab = get_model('bert_2_128_2', pretrained=str(tmp_path / 'hf'), dropout=0.0)
    assert vocab == bundled and not model.use_decoder and model.use_pooler
    ids, types, lengths = batch_arrays(seed=5, vocab_size=30522)
    seq, pooled = model(*nd(ids, types, lengths))
    assert_valid_close(seq.asnumpy(), hf_forward(reference, ids, types,
                                                 lengths).last_hidden_state.numpy(), LENGTHS)
    with pytest.raises(ConversionError, match='missing from the checkpoint.*decoder.bias'):
        get_model('bert_2_128_2', pretrained=str(tmp_path / 'hf'), use_decoder=True)
    with pytest.raises(ConversionError, match=r"num_layers: the checkpoint's configuration says 2, "
                                              r'the model has 4'):
        get_model('bert_4_256_4', units=128, num_heads=2, hidden_size=512,
                  pretrained=str(tmp_path / 'hf'), hparam_allow_override=True)


# ---- bad inputs: one clear error, nothing loaded or written ----

def test_pytorch_bin_without_torch_says_what_to_install(tmp_path, monkeypatch):
    folder = save_hf(random_hf_model(transformers.BertModel, seed=7), tmp_path / 'hf',
                     bin_format=True)
    monkeypatch.setitem(sys.modules, 'torch', None)  # as if torch were not installed
    with pytest.raises(ConversionError, match=r'pytorch_model.bin is a PyTorch pickle; reading '
                                              r'it needs torch \(pip install torch\)'):
        read_hf_checkpoint(folder)


@pytest.fixture(name='hf_dir')
def fixture_hf_dir(tmp_path):
    return save_hf(random_hf_model(transformers.BertModel, seed=6), tmp_path / 'hf')


def test_truncated_safetensors_is_reported(hf_dir):
    path = os.path.join(hf_dir, 'model.safetensors')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) - 100])
    with pytest.raises(ConversionError, match=r'is truncated: tensor .* ends at byte'):
        read_hf_checkpoint(hf_dir)
    with open(path, 'wb') as f:
        f.write(data[:20])
    with pytest.raises(ConversionError, match='truncated or not a safetensors file'):
        read_hf_checkpoint(hf_dir)


def test_wrong_shape_names_the_tensor_and_both_shapes(hf_dir):
    checkpoint = read_hf_checkpoint(hf_dir)
    checkpoint.arrays['encoder.layers.1.ffn_1.weight'] = np.zeros((30, 16), 'float32')
    model = tiny_model(use_decoder=False, use_classifier=False)
    before = model.encoder.word_embed.weight.data().asnumpy()
    with pytest.raises(ConversionError, match=r'encoder\.layers\.1\.ffn_1\.weight: checkpoint '
                                              r'has shape \(30, 16\), model expects \(32, 16\)'):
        load_into(model, checkpoint)
    np.testing.assert_array_equal(model.encoder.word_embed.weight.data().asnumpy(), before)


def test_unexpected_and_missing_tensors_need_an_explicit_flag(hf_dir):
    checkpoint = read_hf_checkpoint(hf_dir)
    checkpoint.arrays['encoder.extra.weight'] = np.zeros(3, 'float32')
    del checkpoint.arrays['pooler.dense.bias']
    model = tiny_model(use_decoder=False, use_classifier=False)
    with pytest.raises(ConversionError) as err:
        load_into(model, checkpoint)
    assert 'missing from the checkpoint (1): pooler.dense.bias' in str(err.value)
    assert 'not in the model (1): encoder.extra.weight' in str(err.value)
    missing, unexpected = load_into(model, checkpoint, allow_missing=True, allow_unexpected=True)
    assert missing == ['pooler.dense.bias'] and unexpected == ['encoder.extra.weight']


def test_untied_mlm_output_weight_is_refused(tmp_path):
    folder = save_hf(random_hf_model(transformers.BertForPreTraining, seed=8,
                                     tie_word_embeddings=False), tmp_path / 'hf')
    with pytest.raises(ConversionError, match='cls.predictions.decoder.weight differs from '
                                              'encoder.word_embed.weight, but gluonbert ties'):
        read_hf_checkpoint(folder)


def test_vocab_size_mismatch_is_reported(hf_dir):
    with open(os.path.join(hf_dir, 'vocab.txt'), 'a', encoding='utf-8') as f:
        f.write('extra\n')
    with pytest.raises(ConversionError, match='vocabulary has 51 tokens, word embedding has 50'):
        read_hf_checkpoint(hf_dir)


@pytest.mark.parametrize('field', ['num_attention_heads', 'hidden_act', 'type_vocab_size'])
def test_missing_config_field_is_named(hf_dir, field):
    path = os.path.join(hf_dir, 'config.json')
    with open(path, encoding='utf-8') as f:
        config = json.load(f)
    del config[field]
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    with pytest.raises(ConversionError, match=f'lacks required field.*{field}'):
        read_hf_checkpoint(hf_dir)


def test_other_architectures_are_refused(hf_dir):
    path = os.path.join(hf_dir, 'config.json')
    with open(path, encoding='utf-8') as f:
        config = json.load(f)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(config, model_type='roberta'), f)
    with pytest.raises(ConversionError, match="model_type is 'roberta'"):
        read_hf_checkpoint(hf_dir)


def test_save_refuses_to_clobber_and_leaves_nothing_on_failure(tmp_path):
    model = tiny_model()
    target = tmp_path / 'out'
    with pytest.raises(ConversionError, match='vocabulary has 30522 tokens but the model '
                                              'embeds 50'):
        save_hf_checkpoint(model, get_model('bert_2_128_2', pretrained=False)[1], str(target))
    assert not os.listdir(tmp_path)
    save_hf_checkpoint(model, tiny_vocab(), str(target))
    with pytest.raises(FileExistsError, match='already exists'):
        save_hf_checkpoint(model, tiny_vocab(), str(target))
    save_hf_checkpoint(model, tiny_vocab(), str(target), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ['out']


def test_a_mean_pooling_head_round_trips_natively_and_hf_refuses_it(tmp_path):
    from gluonbert.convert import load_checkpoint
    from gluonbert.convert.layout import block_from_checkpoint
    from gluonbert.convert.native import save_native_checkpoint
    bert = tiny_model(use_pooler=False, use_decoder=False, use_classifier=False)
    head = BERTClassifier(bert, num_classes=3, pooling='mean')
    head.initialize_head()
    with pytest.raises(ConversionError, match="pools the mean of the tokens; HuggingFace's BERT "
                                              'heads pool \\[CLS\\]'):
        save_hf_checkpoint(head, tiny_vocab(), str(tmp_path / 'hf'))
    assert not os.listdir(tmp_path)
    save_native_checkpoint(head, tiny_vocab(), str(tmp_path / 'native'))
    loaded = block_from_checkpoint(load_checkpoint(str(tmp_path / 'native')))
    assert type(loaded) is BERTClassifier and loaded.pooling == 'mean'
    assert not loaded.bert.use_pooler
    inputs = [mx.nd.array(a) for a in batch_arrays(seed=3)]
    np.testing.assert_allclose(loaded(*inputs).asnumpy(), head(*inputs).asnumpy(), atol=1e-6)


def test_safetensors_reader_and_writer_agree_with_the_safetensors_package(tmp_path):
    st_numpy = pytest.importorskip('safetensors.numpy')
    rng = np.random.RandomState(0)
    arrays = {'a': rng.normal(size=(3, 4)).astype('float32'),
              'b': rng.normal(size=(5,)).astype('float16'),
              'c': rng.randint(0, 9, size=(2, 2)).astype('int64'), 'empty': np.zeros((0, 3), 'f4')}
    st_numpy.save_file(arrays, str(tmp_path / 'theirs.safetensors'))
    ours = read_safetensors(str(tmp_path / 'theirs.safetensors'))
    write_safetensors(str(tmp_path / 'ours.safetensors'), arrays)
    theirs = st_numpy.load_file(str(tmp_path / 'ours.safetensors'))
    for name, value in arrays.items():
        for got in (ours[name], theirs[name]):
            assert got.dtype == value.dtype and got.shape == value.shape
            np.testing.assert_array_equal(got, value)


def test_bfloat16_is_widened_exactly(tmp_path):
    values = torch.tensor([[1.5, -2.25], [3.0e-3, 65280.0]], dtype=torch.bfloat16)
    from safetensors.torch import save_file
    save_file({'w': values}, str(tmp_path / 'bf16.safetensors'))
    got = read_safetensors(str(tmp_path / 'bf16.safetensors'))['w']
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values.float().numpy())


def test_label_names_and_tokenizer_settings_reach_transformers(tmp_path):
    backbone = tiny_model(use_decoder=False, use_classifier=False, dropout=0.0)
    block = BERTClassifier(backbone, num_classes=3)
    block.initialize_head()
    labels = ['sad', 'neutral', 'happy']
    save_hf_checkpoint(block, tiny_vocab(), str(tmp_path / 'out'), labels=labels, lower=False)
    theirs = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / 'out'))
    assert theirs.config.id2label == dict(enumerate(labels))
    assert theirs.config.label2id == {name: i for i, name in enumerate(labels)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / 'out'))
    assert tokenizer.tokenize('TOK7 tok7') == ['[UNK]', 'tok7']  # do_lower_case=False kept
    assert read_hf_checkpoint(str(tmp_path / 'out')).labels == labels
    with pytest.raises(ValueError, match=r'2 label names \(a, b\) for a head with 3 outputs'):
        save_hf_checkpoint(block, tiny_vocab(), str(tmp_path / 'bad'), labels=['a', 'b'])
    with pytest.raises(ValueError, match='label names must be distinct'):
        save_hf_checkpoint(block, tiny_vocab(), str(tmp_path / 'bad'), labels=['a', 'b', 'a'])
    assert sorted(os.listdir(tmp_path)) == ['out']


def test_a_folder_with_tokenizer_json_only_gives_its_vocabulary(tmp_path):
    reference = random_hf_model(transformers.BertForTokenClassification, seed=9, num_labels=2,
                                id2label={0: 'O', 1: 'B-X'}, label2id={'O': 0, 'B-X': 1})
    reference.save_pretrained(str(tmp_path / 'hf'))
    write_vocab(str(tmp_path))
    transformers.BertTokenizerFast(vocab=str(tmp_path / 'vocab.txt')).save_pretrained(
        str(tmp_path / 'hf'))
    if os.path.exists(tmp_path / 'hf' / 'vocab.txt'):  # transformers < 5 still writes it
        os.remove(tmp_path / 'hf' / 'vocab.txt')
    checkpoint = read_hf_checkpoint(str(tmp_path / 'hf'))
    assert checkpoint.vocab == tiny_vocab()
    assert checkpoint.task == 'token_classification' and checkpoint.labels == ['O', 'B-X']


def test_id2label_that_does_not_fit_the_head_is_refused(tmp_path):
    reference = random_hf_model(transformers.BertForSequenceClassification, seed=10,
                                num_labels=2)
    folder = save_hf(reference, tmp_path / 'cls')
    path = os.path.join(folder, 'config.json')
    with open(path, encoding='utf-8') as f:
        config = json.load(f)
    config['id2label'] = {'0': 'a', '2': 'c'}
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    with pytest.raises(ConversionError, match=r'id2label indices \[0, 2\] are not 0..1'):
        read_hf_checkpoint(folder)
    config['id2label'] = {'0': 'a', '1': 'b', '2': 'c'}
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    with pytest.raises(ConversionError, match='3 label names for a task layer with 2 outputs'):
        read_hf_checkpoint(folder)
