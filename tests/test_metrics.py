"""Metrics against MXNet's own metrics, textbook formulas, and the SQuAD v1.1 scoring rules."""
import mxnet as mx
import numpy as np
import pytest

from gluonbert import metrics


@pytest.fixture
def binary():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, size=500)
    scores = rng.randn(500, 2) + np.eye(2)[labels] * 0.8  # better than chance
    return labels, scores


def mx_value(metric, labels, preds):
    metric.update([mx.nd.array(labels)], [mx.nd.array(preds)])
    return metric.get()[1]


def test_accuracy_f1_mcc_match_mxnet(binary):
    labels, scores = binary
    assert metrics.accuracy(labels, scores) == pytest.approx(
        mx_value(mx.metric.Accuracy(), labels, scores))
    assert metrics.f1_score(labels, scores) == pytest.approx(
        mx_value(mx.metric.F1(), labels, scores))
    assert metrics.matthews_corrcoef(labels, scores) == pytest.approx(
        mx_value(mx.metric.MCC(), labels, scores))
    assert 0.5 < metrics.accuracy(labels, scores) < 1


def test_pearson_matches_mxnet_and_numpy():
    rng = np.random.RandomState(1)
    x = rng.randn(200)
    y = 0.7 * x + rng.randn(200) * 0.5
    expected = np.corrcoef(x, y)[0, 1]
    assert metrics.pearson_corr(x, y) == pytest.approx(expected)
    assert metrics.pearson_corr(x, y) == pytest.approx(
        mx_value(mx.metric.PearsonCorrelation(), x, y), rel=1e-5)


def test_spearman_textbook_formula_without_ties():
    rng = np.random.RandomState(2)
    x, y = rng.permutation(30).astype(float), rng.randn(30)
    n = 30
    d = metrics.rank_average(x) - metrics.rank_average(y)
    assert metrics.spearman_corr(x, y) == pytest.approx(1 - 6 * np.sum(d ** 2) / (n * (n * n - 1)))
    assert metrics.spearman_corr(x, np.exp(x)) == pytest.approx(1.0)  # monotone -> 1


def test_spearman_with_ties_uses_average_ranks():
    assert metrics.rank_average([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    # hand computation: ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1., 2, 3, 4])
    expected = np.corrcoef(rx, ry)[0, 1]
    assert metrics.spearman_corr([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(expected)


def test_multiclass_mcc_and_perfect_cases():
    labels = np.array([0, 1, 2, 2, 1, 0])
    assert metrics.matthews_corrcoef(labels, labels) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef([0, 0, 1, 1], [0, 0, 0, 0]) == 0.0  # undefined -> 0
    assert metrics.f1_score([0, 0], [0, 0]) == 0.0


def test_metric_classes_accumulate_batches(binary):
    labels, scores = binary
    group = metrics.create_metric(['accuracy', 'f1', 'mcc'])
    for start in range(0, 500, 64):
        group.update(mx.nd.array(labels[start:start + 64]), mx.nd.array(scores[start:start + 64]))
    names, values = group.get()
    assert names == ['accuracy', 'f1', 'mcc']
    assert values == pytest.approx([metrics.accuracy(labels, scores),
                                    metrics.f1_score(labels, scores),
                                    metrics.matthews_corrcoef(labels, scores)])
    group.reset()
    assert np.isnan(group.get()[1][0])
    regression = metrics.create_metric(['pearsonr', 'spearmanr'])
    regression.update([mx.nd.array([1, 2, 3])], [mx.nd.array([[1.5], [2.0], [3.5]])])
    assert regression.get()[1][1] == pytest.approx(1.0)


def test_shape_mismatch_and_unknown_metric_are_errors():
    with pytest.raises(ValueError, match='3 labels but 2 predictions'):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['auc'\]"):
        metrics.create_metric('auc')


@pytest.mark.parametrize('text, normalized', [
    ('The Denver Broncos!', 'denver broncos'),
    ('  an   apple, a day ', 'apple day'),
    ('Theatre of the Absurd', 'theatre of absurd'),  # 'the' only as a whole word
    ("Saint Bernadette Soubirous's", 'saint bernadette soubirouss'),
])
def test_squad_normalization(text, normalized):
    assert metrics.normalize_answer(text) == normalized


def test_squad_scores():
    assert metrics.squad_exact_match('the Broncos', 'Broncos.') == 1.0
    assert metrics.squad_f1('Denver Broncos team', 'the Denver Broncos') == pytest.approx(0.8)
    assert metrics.squad_f1('Carolina', 'Denver') == 0.0
    result = metrics.squad_evaluate({'q1': ['Denver Broncos', 'Broncos'], 'q2': ['1990'],
                                     'q3': ['x']},
                                    {'q1': 'Broncos', 'q2': 'in 1990'})
    assert result['exact_match'] == pytest.approx(100 / 3)
    assert result['f1'] == pytest.approx(100 * (1 + 2 / 3) / 3)
