"""batchify: same values as GluonNLP 0.10's, integers stay integers, clear errors."""
import collections
import warnings

import gluonnlp.data.batchify as nlp_bf
import mxnet as mx
import numpy as np
import pytest

from gluonbert.data import batchify as bf

RAGGED = [[1, 2, 3], [4], [5, 6]]


def test_pad_values_match_gluonnlp_and_keep_integer_lists_integer():
    ours, lengths = bf.Pad(ret_length=True)(RAGGED)
    theirs, their_lengths = nlp_bf.Pad(ret_length=True, pad_val=0)(RAGGED)
    np.testing.assert_array_equal(ours.asnumpy(), theirs.asnumpy())
    np.testing.assert_array_equal(lengths.asnumpy(), their_lengths.asnumpy())
    assert ours.dtype == np.int32 and lengths.dtype == np.int32
    assert theirs.dtype == np.float32  # the GluonNLP behaviour this module fixes


@pytest.mark.parametrize('dtype', [np.int32, np.int64, np.float16, np.float64])
def test_numpy_dtypes_are_kept(dtype):
    arrays = [np.arange(n, dtype=dtype) for n in (3, 1)]
    assert bf.Pad()(arrays).dtype == dtype
    assert bf.Stack()([np.ones(2, dtype), np.zeros(2, dtype)]).dtype == dtype


def test_python_numbers_become_int32_float32_or_int64_when_needed():
    assert bf.Stack()([1, 2, 3]).dtype == np.int32
    assert bf.Stack()([0.5, 1.0]).dtype == np.float32
    big = bf.Stack()([2 ** 40, 1])
    assert big.dtype == np.int64 and big.asnumpy()[0] == 2 ** 40


def test_pad_axis_round_to_and_pad_val_match_gluonnlp():
    rng = np.random.RandomState(0)
    samples = [rng.randint(0, 9, size=(2, n)).astype(np.int32) for n in (5, 3, 7)]
    ours = bf.Pad(axis=1, pad_val=-1, round_to=4)(samples)
    theirs = nlp_bf.Pad(axis=1, pad_val=-1, round_to=4)(samples)
    assert ours.shape == (3, 2, 8)
    np.testing.assert_array_equal(ours.asnumpy(), theirs.asnumpy())
    np.testing.assert_array_equal(bf.Pad(axis=-1)(samples).asnumpy(),
                                  bf.Pad(axis=1)(samples).asnumpy())


def test_stack_matches_gluonnlp_for_ndarrays():
    samples = [mx.nd.array([[1, 2], [3, 4]]) * i for i in range(3)]
    np.testing.assert_array_equal(bf.Stack()(samples).asnumpy(),
                                  nlp_bf.Stack()(samples).asnumpy())


def test_tuple_batches_transform_output_in_model_order():
    samples = [(np.array([101, 7, 102], np.int32), np.array([0, 0, 0], np.int32),
                np.int32(3), np.int32(1)),
               (np.array([101, 102], np.int32), np.array([0, 0], np.int32), np.int32(2),
                np.int32(0))]
    batchify = bf.Tuple(bf.Pad(), bf.Pad(), bf.Stack(), bf.Stack())
    ids, types, lengths, labels = batchify(samples)
    assert ids.asnumpy().tolist() == [[101, 7, 102], [101, 102, 0]]
    assert types.shape == (2, 3) and lengths.asnumpy().tolist() == [3, 2]
    assert labels.asnumpy().tolist() == [1, 0]
    assert {a.dtype for a in (ids, types, lengths, labels)} == {np.int32}
    assert bf.Tuple([bf.Pad(), bf.Pad(), bf.Stack(), bf.List()])(samples)[3] == [1, 0]


def test_dict_and_named_tuple():
    Sample = collections.namedtuple('Sample', ['ids', 'label'])
    samples = [Sample([1, 2], 0), Sample([3], 1)]
    batch = bf.NamedTuple(Sample, {'ids': bf.Pad(), 'label': bf.Stack()})(samples)
    assert isinstance(batch, Sample) and batch.ids.shape == (2, 2)
    assert batch.label.asnumpy().tolist() == [0, 1]
    by_order = bf.NamedTuple(Sample, [bf.Pad(pad_val=9), bf.Stack()])(samples)
    assert by_order.ids.asnumpy().tolist() == [[1, 2], [3, 9]]
    dicts = [dict(ids=[1, 2], label=0), dict(ids=[3], label=1)]
    out = bf.Dict({'ids': bf.Pad(), 'label': bf.Stack()})(dicts)
    assert out['ids'].asnumpy().tolist() == [[1, 2], [3, 0]]
    with pytest.raises(KeyError, match="a sample has no field 'nope'"):
        bf.Dict({'nope': bf.Stack()})(dicts)


def test_works_as_dataloader_batchify_fn():
    dataset = mx.gluon.data.SimpleDataset([([1] * n, n % 2) for n in range(1, 8)])
    loader = mx.gluon.data.DataLoader(dataset, batch_size=3,
                                      batchify_fn=bf.Tuple(bf.Pad(), bf.Stack()))
    shapes = [ids.shape for ids, _ in loader]
    assert shapes == [(3, 3), (3, 6), (1, 7)]


@pytest.mark.parametrize('fn, data, error, message', [
    (bf.Stack(), [[1, 2], [3]], ValueError, 'Stack needs samples of one shape'),
    (bf.Pad(), [np.zeros((2, 3)), np.zeros((3, 4))], ValueError, 'may differ only along axis 0'),
    (bf.Pad(axis=2), [[1, 2]], ValueError, 'axis=2 is out of range'),
    (bf.Pad(), [], ValueError, 'empty list'),
    (bf.Stack(), [['a'], ['b']], TypeError, 'can only batch numbers'),
    (bf.Tuple(bf.Stack(), bf.Stack()), [(1, 2, 3)], ValueError, '2 batchify functions but a '
                                                                  'sample has 3 fields'),
])
def test_errors_name_the_problem(fn, data, error, message):
    with pytest.raises(error, match=message):
        fn(data)


def test_pad_warns_once_per_instance_about_ndarray_input():
    pad = bf.Pad(pad_val=-1)
    samples = [mx.nd.array([]), mx.nd.arange(1)]
    with pytest.warns(UserWarning, match='Using Pad with NDArrays is discouraged for speed '
                                         'reasons'):
        out = pad(samples)
    assert out.asnumpy().tolist() == [[-1.0], [0.0]] and out.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert bf.Pad(pad_val=-1, round_to=2)([[], [0]]).asnumpy().tolist() == [[-1, -1],
                                                                                 [0, -1]]
        pad(samples)  # warned already


def test_gluonnlps_value_errors_for_dict_and_named_tuple():
    Sample = collections.namedtuple('Sample', ['ids', 'label'])
    with pytest.raises(ValueError, match='Dict needs a dict of batchify functions; got list'):
        bf.Dict([bf.Pad(), bf.Stack()])
    with pytest.raises(ValueError, match="batchify function for 'label' is not callable: 2"):
        bf.Dict({'ids': bf.Pad(), 'label': 2})
    with pytest.raises(ValueError, match="batchify function for 'ids' is not callable: 1"):
        bf.NamedTuple(Sample, [1, 2])
    with pytest.raises(ValueError, match=r'fn_info keys \['):
        bf.NamedTuple(Sample, {'ids': bf.Pad(), 'labels': bf.Stack()})
    with pytest.raises(ValueError, match='Sample has 2 fields but 1 batchify functions'):
        bf.NamedTuple(Sample, (bf.Pad(),))
    with pytest.raises(ValueError, match=r'NamedTuple\(Sample\) got a int'):
        bf.NamedTuple(Sample, (bf.Pad(), bf.Stack()))([1, 2])
