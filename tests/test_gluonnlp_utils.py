"""GluonNLP 0.10's nlp.utils and nlp.data.TSVDataset, checked against the real GluonNLP."""
import warnings

import mxnet as mx
import numpy as np
import pytest

import gluonbert
from gluonbert.data.dataset import Splitter, TSVDataset

gluonnlp = pytest.importorskip('gluonnlp')


def _params_with_grads(values):
    params = []
    for i, value in enumerate(values):
        param = mx.gluon.Parameter(f'p{i}', shape=np.shape(value))
        param.initialize(ctx=mx.cpu())
        param.grad()[:] = value
        params.append(param)
    return params


@pytest.mark.parametrize('max_norm', [0.5, 100.0])
def test_clip_grad_global_norm_matches_gluonnlp(max_norm):
    values = [np.random.randn(3, 4).astype('float32'), np.random.randn(5).astype('float32')]
    ours, theirs = _params_with_grads(values), _params_with_grads(values)
    norm = gluonbert.utils.clip_grad_global_norm(ours, max_norm)
    expected = gluonnlp.utils.clip_grad_global_norm(theirs, max_norm)  # an NDArray, in fact
    assert norm == pytest.approx(float(np.ravel(expected.asnumpy())[0]), rel=1e-6)
    assert norm == pytest.approx(float(np.sqrt(sum((v ** 2).sum() for v in values))), rel=1e-6)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad().asnumpy(), b.grad().asnumpy(), rtol=1e-6)
    clipped = np.sqrt(sum((p.grad().asnumpy() ** 2).sum() for p in ours))
    assert clipped == pytest.approx(min(norm, max_norm), rel=1e-5)


def test_clip_grad_global_norm_warns_on_nan_and_keeps_gradients():
    params = _params_with_grads([np.array([np.nan, 1.0], dtype='float32')])
    with pytest.warns(UserWarning, match='nan or inf'):
        gluonbert.utils.clip_grad_global_norm(params, 1.0)
    assert params[0].grad().asnumpy()[1] == 1.0


def test_check_version_accepts_gluonnlp_versions_and_refuses_newer():
    gluonbert.utils.check_version('0.8.1')
    with pytest.raises(AssertionError, match='older than'):
        gluonbert.utils.check_version('99.0')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        gluonbert.utils.check_version('99.0', warning_only=True)
    assert 'older than' in str(caught[0].message)


def test_tsv_dataset_matches_gluonnlp(tmp_path):
    path = tmp_path / 'dev.tsv'
    path.write_text('\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
                    '1\t7\t8\tHe said "yes" .\tHe agreed .\n0\t9\t10\tA b\tC d\n',
                    encoding='utf-8')
    kwargs = dict(field_separator=Splitter('\t'), num_discard_samples=1, field_indices=[3, 4, 0])
    ours = TSVDataset(str(path), **kwargs)
    kwargs['field_separator'] = gluonnlp.data.Splitter('\t')
    theirs = gluonnlp.data.TSVDataset(str(path), **kwargs)
    assert list(ours) == list(theirs) == [['He said "yes" .', 'He agreed .', '1'],
                                          ['A b', 'C d', '0']]
    assert ours.transform(lambda s: s[2])[1] == '0'


def test_tsv_dataset_names_a_short_line(tmp_path):
    path = tmp_path / 'bad.tsv'
    path.write_text('h\n1\ta\n2\n', encoding='utf-8')
    with pytest.raises(ValueError, match=r'bad.tsv, sample 3: 1 fields'):
        TSVDataset(str(path), num_discard_samples=1, field_indices=[1, 0])


def test_tsv_dataset_leaves_out_incomplete_lines_with_allow_missing_as_gluonnlp(tmp_path):
    path = tmp_path / 'short.tsv'
    path.write_text('h\n1\ta\n2\n3\tc\n', encoding='utf-8')
    kwargs = dict(num_discard_samples=1, field_indices=[1, 0], allow_missing=True)
    with pytest.warns(UserWarning, match=r'1 incomplete samples in .*short.tsv'):
        ours = TSVDataset(str(path), field_separator=Splitter('\t'), **kwargs)
    with pytest.warns(UserWarning, match=r'1 incomplete samples in .*short.tsv'):
        theirs = gluonnlp.data.TSVDataset(str(path), field_separator=gluonnlp.data.Splitter('\t'),
                                          **kwargs)
    assert list(ours) == list(theirs) == [['a', '1'], ['c', '3']]
