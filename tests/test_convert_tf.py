"""Google TF BERT checkpoints written by real TensorFlow, read without it."""
import json
import os

import numpy as np
import pytest

from gluonbert.convert import ConversionError, load_checkpoint
from gluonbert.convert.layout import load_into, model_from_checkpoint
from gluonbert.convert.tf_bundle import read_tf_variables
from gluonbert.model import BERTClassifier
from checkpoint_helpers import (LENGTHS, MASKED, assert_valid_close, batch_arrays, gather_masked,
                                hf_forward, nd, random_hf_model, write_vocab)

tf = pytest.importorskip('tensorflow')
torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')


def google_names(num_layers):
    """Google's BERT variable name -> (HF state-dict name, stored transposed?), written out
    independently of gluonbert's converter (from google-research/bert's modeling.py)."""
    table = {f'bert/embeddings/{t}': (f'bert.embeddings.{t}.weight', False)
             for t in ('word_embeddings', 'token_type_embeddings', 'position_embeddings')}
    table['bert/embeddings/LayerNorm/gamma'] = ('bert.embeddings.LayerNorm.weight', False)
    table['bert/embeddings/LayerNorm/beta'] = ('bert.embeddings.LayerNorm.bias', False)
    dense = {'attention/self/query': 'attention.self.query',
             'attention/self/key': 'attention.self.key',
             'attention/self/value': 'attention.self.value',
             'attention/output/dense': 'attention.output.dense',
             'intermediate/dense': 'intermediate.dense', 'output/dense': 'output.dense'}
    norms = {'attention/output/LayerNorm': 'attention.output.LayerNorm',
             'output/LayerNorm': 'output.LayerNorm'}
    for i in range(num_layers):
        for tf_part, hf_part in dense.items():
            base, hf_base = f'bert/encoder/layer_{i}/{tf_part}', \
                f'bert.encoder.layer.{i}.{hf_part}'
            table[base + '/kernel'] = (hf_base + '.weight', True)
            table[base + '/bias'] = (hf_base + '.bias', False)
        for tf_part, hf_part in norms.items():
            base, hf_base = f'bert/encoder/layer_{i}/{tf_part}', \
                f'bert.encoder.layer.{i}.{hf_part}'
            table[base + '/gamma'] = (hf_base + '.weight', False)
            table[base + '/beta'] = (hf_base + '.bias', False)
    table.update({
        'bert/pooler/dense/kernel': ('bert.pooler.dense.weight', True),
        'bert/pooler/dense/bias': ('bert.pooler.dense.bias', False),
        'cls/predictions/transform/dense/kernel': ('cls.predictions.transform.dense.weight', True),
        'cls/predictions/transform/dense/bias': ('cls.predictions.transform.dense.bias', False),
        'cls/predictions/transform/LayerNorm/gamma':
            ('cls.predictions.transform.LayerNorm.weight', False),
        'cls/predictions/transform/LayerNorm/beta':
            ('cls.predictions.transform.LayerNorm.bias', False),
        'cls/predictions/output_bias': ('cls.predictions.bias', False),
        'cls/seq_relationship/output_weights': ('cls.seq_relationship.weight', False),
        'cls/seq_relationship/output_bias': ('cls.seq_relationship.bias', False),
        'output_weights': ('classifier.weight', False),  # run_classifier.py's head
        'output_bias': ('classifier.bias', False),
    })
    return table


def write_tf_checkpoint(prefix, variables):
    """Save {name: array} with TF1's Saver, as the original BERT code did."""
    graph = tf.Graph()
    with graph.as_default():
        for name, value in variables.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False)


def export_google(hf_model, folder, training_state=True):
    """Write hf_model as Google's release layout: bert_config.json, bert_model.ckpt.*, vocab."""
    os.makedirs(folder, exist_ok=True)
    prefix = 'bert.' if isinstance(hf_model, transformers.BertModel) else ''
    state = {prefix + k: v.numpy() for k, v in hf_model.state_dict().items()}
    variables = {}
    for tf_name, (hf_name, transposed) in google_names(hf_model.config.num_hidden_layers).items():
        if hf_name in state:
            value = state[hf_name]
            variables[tf_name] = np.ascontiguousarray(value.T if transposed else value)
    if training_state:  # what a fine-tuning run leaves beside the weights
        variables['global_step'] = np.int64(1000)
        variables['bert/pooler/dense/kernel/adam_m'] = np.ones((16, 16), 'float32')
    write_tf_checkpoint(os.path.join(folder, 'bert_model.ckpt'), variables)
    config = {k: getattr(hf_model.config, k) for k in (
        'attention_probs_dropout_prob', 'hidden_act', 'hidden_dropout_prob', 'hidden_size',
        'initializer_range', 'intermediate_size', 'max_position_embeddings',
        'num_attention_heads', 'num_hidden_layers', 'type_vocab_size', 'vocab_size')}
    with open(os.path.join(folder, 'bert_config.json'), 'w', encoding='utf-8') as f:
        json.dump(config, f)
    write_vocab(folder)
    return str(folder)


def test_pretraining_checkpoint_gives_the_source_outputs(tmp_path):
    source = random_hf_model(transformers.BertForPreTraining, seed=11)
    folder = export_google(source, tmp_path / 'google')
    checkpoint = load_checkpoint(folder)
    assert checkpoint.heads == {'pooler', 'classifier', 'decoder'}
    ours = model_from_checkpoint(checkpoint, dropout=0.0)

    ids, types, lengths = batch_arrays(seed=11)
    expected = hf_forward(source, ids, types, lengths, output_hidden_states=True)
    seq, pooled, nsp, mlm = ours(*nd(ids, types, lengths, MASKED))
    assert_valid_close(seq.asnumpy(), expected.hidden_states[-1].numpy(), LENGTHS)
    np.testing.assert_allclose(nsp.asnumpy(), expected.seq_relationship_logits.numpy(),
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(mlm.asnumpy(),
                               gather_masked(expected.prediction_logits.numpy(), MASKED),
                               atol=1e-4, rtol=0)


def test_run_classifier_checkpoint_loads_into_bert_classifier(tmp_path):
    source = random_hf_model(transformers.BertForSequenceClassification, seed=12, num_labels=3)
    folder = export_google(source, tmp_path / 'google')
    checkpoint = load_checkpoint(os.path.join(folder, 'bert_model.ckpt'))  # a prefix works too
    assert checkpoint.task == 'sequence_classification' and checkpoint.task_labels == 3
    classifier = BERTClassifier(model_from_checkpoint(checkpoint, use_decoder=False,
                                                      use_classifier=False, dropout=0.0),
                                num_classes=3)
    classifier.initialize_head()
    load_into(classifier, checkpoint)
    ids, types, lengths = batch_arrays(seed=12)
    np.testing.assert_allclose(classifier(*nd(ids, types, lengths)).asnumpy(),
                               hf_forward(source, ids, types, lengths).logits.numpy(),
                               atol=1e-4, rtol=0)


def test_bundle_reader_agrees_with_tensorflow_for_every_dtype(tmp_path):
    rng = np.random.RandomState(0)
    values = {'f32': rng.normal(size=(3, 5)).astype('float32'),
              'f64': rng.normal(size=(4,)), 'f16': rng.normal(size=(2, 2)).astype('float16'),
              'i32': rng.randint(-9, 9, size=(7,)).astype('int32'), 'i64': np.int64(-5),
              'scope/big': rng.normal(size=(300, 70)).astype('float32')}
    graph = tf.Graph()
    with graph.as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        tf.compat.v1.get_variable('bf16', initializer=tf.constant(values['f32'],
                                                                 dtype=tf.bfloat16))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(tmp_path / 'ck'), write_meta_graph=False)
    ours = read_tf_variables(str(tmp_path / 'ck'))
    reader = tf.train.load_checkpoint(str(tmp_path / 'ck'))
    assert set(ours) == set(reader.get_variable_to_shape_map())
    for name, value in ours.items():
        theirs = reader.get_tensor(name)
        if name == 'bf16':
            theirs = tf.cast(theirs, tf.float32).numpy()
        assert value.shape == np.shape(theirs) and value.dtype == np.asarray(theirs).dtype
        np.testing.assert_array_equal(value, theirs)


@pytest.fixture(name='google_folder')
def fixture_google_folder(tmp_path):
    return export_google(random_hf_model(transformers.BertModel, seed=13), tmp_path / 'google',
                         training_state=False)


def test_truncated_data_file_is_reported(google_folder):
    data = os.path.join(google_folder, 'bert_model.ckpt.data-00000-of-00001')
    size = os.path.getsize(data)
    with open(data, 'r+b') as f:
        f.truncate(size - 10)
    with pytest.raises(ConversionError, match=r'is truncated: variable .* needs bytes'):
        load_checkpoint(google_folder)


def test_corrupted_data_file_fails_the_checksum(google_folder):
    data = os.path.join(google_folder, 'bert_model.ckpt.data-00000-of-00001')
    with open(data, 'r+b') as f:
        f.seek(os.path.getsize(data) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(ConversionError, match=r'is corrupt: the bytes of variable .* fail the '
                                              r'checksum'):
        load_checkpoint(google_folder)


def test_crc32c_matches_tensorboards_reference():
    stub = pytest.importorskip('tensorboard.compat.tensorflow_stub.pywrap_tensorflow')
    from gluonbert.convert.crc32c import crc32c, masked_crc32c
    assert crc32c(b'123456789') == 0xE3069283  # the standard check value
    rng = np.random.RandomState(5)
    for size in (0, 7, 4095, 4096, 70001, 262147):
        data = rng.bytes(size)
        assert masked_crc32c(data) == stub.masked_crc32c(data), size


def test_truncated_index_is_reported(google_folder):
    index = os.path.join(google_folder, 'bert_model.ckpt.index')
    with open(index, 'r+b') as f:
        f.truncate(os.path.getsize(index) - 3)
    with pytest.raises(ConversionError, match='truncated or not a TensorFlow checkpoint index'):
        load_checkpoint(google_folder)


def test_config_that_does_not_fit_the_tensors(google_folder):
    path = os.path.join(google_folder, 'bert_config.json')
    with open(path, encoding='utf-8') as f:
        config = json.load(f)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(config, intermediate_size=48), f)
    checkpoint = load_checkpoint(google_folder)
    with pytest.raises(ConversionError, match=r'encoder\.layers\.0\.ffn_1\.weight: checkpoint has '
                                              r'shape \(32, 16\), model expects \(48, 16\)'):
        model_from_checkpoint(checkpoint)
    del config['num_hidden_layers']
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    with pytest.raises(ConversionError, match='bert_config.json lacks required field.*'
                                              'num_hidden_layers'):
        load_checkpoint(google_folder)
