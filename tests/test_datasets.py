"""Readers and task definitions on real GLUE files, plus every kind of bad input."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from gluonbert.data import (COLA, IMDB, MRPC, SNLI, SST2, STSB, BERTTokenizer, BERTVocab,
                            FixedBucketSampler, ReaderError, batchify, bundled_vocab_path,
                            get_task, read_csv, read_jsonl, read_tsv, train_test_split)

from conftest import REPO, SHARED, SLICE, shared_path  # noqa: E402,F401


@pytest.fixture(scope='module')
def tokenizer():
    return BERTTokenizer(BERTVocab.from_file(bundled_vocab_path()))


def write(path, text, encoding='utf-8'):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def test_sst2_slice_reads_with_class_ids():
    train = SST2.read(os.path.join(SLICE, 'train.tsv'))
    dev = SST2.read(os.path.join(SLICE, 'dev.tsv'))
    assert (len(train), len(dev)) == (8000, 872)
    assert sum(label for _, label in train) == 4482
    assert dev[0] == ("it 's a charming and often affecting journey . ", 1)
    assert train.line_numbers[0] == 2 and train.fields == ('sentence', 'label')


def test_mrpc_with_bom_and_the_test_file_layout():
    train = MRPC.read(shared_path('glue', 'MRPC', 'train.tsv'))
    assert len(train) == 3668
    assert train[0][0].startswith('Amrozi accused his brother')  # the BOM did not leak in
    assert {label for *_, label in train} == {0, 1}
    test = MRPC.read(shared_path('glue', 'MRPC', 'test.tsv'), labeled=False)
    assert len(test) == 1725 and len(test[0]) == 2


def test_full_sst2_train_counts():
    assert len(SST2.read(shared_path('glue', 'SST-2', 'train.tsv'))) == 67349


def test_malformed_row_names_file_and_line(tmp_path):
    path = write(tmp_path / 'bad.tsv', 'sentence\tlabel\ngood film\t1\nno label here\n')
    with pytest.raises(ReaderError, match=r"bad.tsv, line 3: expected 2 '\\t'-separated columns "
                                          r".*found 1: 'no label here'"):
        SST2.read(path)


def test_unknown_label_names_it_and_the_line(tmp_path):
    path = write(tmp_path / 'labels.tsv', 'sentence\tlabel\na\t1\nb\tpositive\n')
    with pytest.raises(ReaderError, match=r"labels.tsv, line 3: label 'positive' is not in the "
                                          r"label set \['0', '1'\]"):
        SST2.read(path)


def test_non_utf8_names_the_line(tmp_path):
    path = write(tmp_path / 'latin1.tsv', 'sentence\tlabel\nfine\t1\ncaf\xe9 au lait\t0\n',
                 encoding='latin-1')
    with pytest.raises(ReaderError, match=r"latin1.tsv, line 3: not valid UTF-8 \(byte b'\\xe9' "
                                          r"at column 4\)"):
        SST2.read(path)


def test_missing_column_lists_the_header(tmp_path):
    path = write(tmp_path / 'cols.tsv', 'text\tlabel\na\t1\n')
    with pytest.raises(ReaderError, match=r"no column named 'sentence'; the header has "
                                          r"\['text', 'label'\]"):
        SST2.read(path)


def test_empty_text_is_a_valid_cls_sep_example(tmp_path, tokenizer):
    path = write(tmp_path / 'empty.tsv', 'sentence\tlabel\n\t1\n')
    dataset = SST2.read(path)
    ids, types, length, label = SST2.transform(tokenizer, 16)(dataset[0])
    assert ids.tolist() == [101, 102] and int(length) == 2 and label == 1


def imdb_csv(sentences):
    lines = ['review,sentiment']
    for i, text in enumerate(sentences):
        review = f'"{text.strip()}, she said: ""{i}""\nSecond line."'
        lines.append('{},{}'.format(review, 'positive' if i % 3 else 'negative'))
    return '\ufeff' + '\r\n'.join(lines) + '\r\n'


def test_imdb_style_csv_with_quotes_newlines_and_seeded_split(tmp_path):
    texts = [text for text, _ in SST2.read(os.path.join(SLICE, 'dev.tsv'))][:50]
    path = write(tmp_path / 'IMDB Dataset.csv', imdb_csv(texts))
    data = IMDB.read(path)
    assert len(data) == 50
    review, label = data[4]
    assert review == f'{texts[4].strip()}, she said: "4"\nSecond line.' and label == 1
    assert data.line_numbers[:3] == [2, 4, 6]  # records span two lines
    train, test = train_test_split(data, test_fraction=0.2, seed=7)
    assert (len(train), len(test)) == (40, 10)
    assert sorted(train[:] + test[:]) == sorted(data[:])
    again, _ = train_test_split(data, test_fraction=0.2, seed=7)
    assert again[:] == train[:]
    other, _ = train_test_split(data, test_fraction=0.2, seed=8)
    assert other[:] != train[:]


def test_csv_broken_quote_names_file_and_line(tmp_path):
    path = write(tmp_path / 'broken.csv',
                 'review,sentiment\n"fine",positive\n"bad "quote",negative\n')
    with pytest.raises(ReaderError, match=r'broken.csv, line 3: malformed CSV'):
        IMDB.read(path)


def test_generic_readers_select_columns(tmp_path):
    path = write(tmp_path / 'multi.tsv', 'id\ttext\textra\ttag\n1\thello\tx\tB\n2\tworld\ty\tA\n')
    assert read_tsv(path, ['text'], 'tag', labels={'A': 0, 'B': 1})[:] == [('hello', 1),
                                                                        ('world', 0)]
    assert read_tsv(path, [1, 3], header=True)[:] == [('hello', 'B'), ('world', 'A')]
    no_header = write(tmp_path / 'plain.csv', 'a,"b, c"\nd,e\n')
    assert read_csv(no_header, [1, 0], header=False)[:] == [('b, c', 'a'), ('e', 'd')]


def snli_lines(sentences):
    labels = ['entailment', 'neutral', '-', 'contradiction']
    return '\n'.join(json.dumps(dict(sentence1=sentences[i], sentence2=sentences[i + 1],
                                     gold_label=labels[i % 4], annotator_labels=['x']))
                     for i in range(len(sentences) - 1)) + '\n'


def test_snli_jsonl_drops_dash_gold_labels(tmp_path):
    sentences = [text for text, _ in SST2.read(os.path.join(SLICE, 'dev.tsv'))][:41]
    path = write(tmp_path / 'snli_1.0_dev.jsonl', snli_lines(sentences))
    data = SNLI.read(path)
    assert len(data) == 30 and data.num_skipped == 10
    assert data[0] == (sentences[0], sentences[1], 1) and data[2][2] == 0
    assert SNLI.num_classes == 3


def test_jsonl_errors_name_the_line(tmp_path):
    path = write(tmp_path / 'bad.jsonl', '{"sentence1": "a", "sentence2": "b", "gold_label": '
                                         '"neutral"}\n{"sentence1": "a"\n')
    with pytest.raises(ReaderError, match='bad.jsonl, line 2: not valid JSON'):
        SNLI.read(path)
    path = write(tmp_path / 'keys.jsonl', '{"sentence1": "a", "gold_label": "neutral"}\n')
    with pytest.raises(ReaderError, match=r"keys.jsonl, line 1: missing key\(s\) \['sentence2'\]"):
        read_jsonl(path, ['sentence1', 'sentence2'], 'gold_label')


def test_stsb_regression_scores(tmp_path, tokenizer):
    header = ('index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t'
              'sentence2\tscore')
    rows = ['0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\t'
            'An air plane is taking off.\t5.000',
            '1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\t'
            'A man is playing a "bamboo" flute.\t3.800']
    path = write(tmp_path / 'sts.tsv', '\n'.join([header] + rows) + '\n')
    data = STSB.read(path)
    assert [score for *_, score in data] == [5.0, 3.8] and STSB.is_regression
    *_, target = STSB.transform(tokenizer, 32)(data[1])
    assert target.dtype == np.float32
    bad = write(tmp_path / 'bad_sts.tsv', header + '\n' + rows[0][:-5] + 'n/a\n')
    with pytest.raises(ReaderError, match="bad_sts.tsv, line 2: label 'n/a' cannot be converted"):
        STSB.read(bad)
    nan = write(tmp_path / 'nan_sts.tsv', header + '\n' + rows[0][:-5] + 'nan\n')
    with pytest.raises(ReaderError, match="line 2: label 'nan' cannot be converted: 'nan' is not "
                                          "a finite number"):
        STSB.read(nan)


def test_cola_without_header(tmp_path):
    path = write(tmp_path / 'in_domain_train.tsv',
                 'gj04\t1\t\tOur friends won\'t buy this analysis, let alone the next one we '
                 'propose.\ngj04\t0\t*\tOne more pseudo generalization and I\'m giving up.\n')
    data = COLA.read(path)
    assert data[0] == ("Our friends won't buy this analysis, let alone the next one we propose.", 1)
    assert data[1][1] == 0 and COLA.metric_names == ('mcc',)


def test_task_metrics_and_lookup():
    names, values = MRPC.metric().get()
    assert names == ['accuracy', 'f1']
    metric = get_task('sst-2').metric()
    metric.update(mx.nd.array([1, 0, 1, 1]), mx.nd.array([[0, 1], [1, 0], [1, 0], [0, 1]]))
    assert metric.get() == (['accuracy'], [0.75])
    with pytest.raises(ValueError, match="unknown task 'qqq'"):
        get_task('qqq')


@pytest.mark.filterwarnings('ignore:texts longer than max_seq_length')
def test_sst2_slice_end_to_end_to_model_ready_batches(tokenizer):
    dataset = SST2.read(os.path.join(SLICE, 'dev.tsv'))
    transform = SST2.transform(tokenizer, max_seq_length=32)
    encoded = dataset.transform(transform, lazy=False)
    too_long = sum(len(tokenizer.encode_ids(text)) > 30 for text, _ in dataset)
    assert transform.truncation.truncated == too_long > 100  # cut, and counted
    lengths = [int(sample[2]) for sample in encoded]
    sampler = FixedBucketSampler(lengths, batch_size=64, num_buckets=4, shuffle=True, seed=0)
    loader = mx.gluon.data.DataLoader(encoded, batch_sampler=sampler, batchify_fn=batchify.Tuple(
        batchify.Pad(pad_val=0), batchify.Pad(pad_val=0), batchify.Stack(), batchify.Stack()))
    seen = 0
    for ids, types, valid, labels in loader:
        assert ids.dtype == types.dtype == valid.dtype == labels.dtype == np.int32
        assert ids.shape[1] == valid.max().asscalar() <= 32
        assert (ids[:, 0] == 101).asnumpy().all()
        seen += ids.shape[0]
    assert seen == 872
