"""Pretraining examples on real text: NSP/MLM ratios, structure, whole-word masking, seeds."""
import os

import numpy as np
import pytest

from gluonbert.data import (SST2, BERTTokenizer, BERTVocab, PretrainingExampleBuilder, batchify,
                            bundled_vocab_path, read_documents)
from gluonbert.data.pretraining import IS_NEXT, NOT_NEXT
from gluonbert.model import BERTEncoder, BERTModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLS, SEP, MASK = 101, 102, 103


@pytest.fixture(scope='module')
def tokenizer():
    return BERTTokenizer(BERTVocab.from_file(bundled_vocab_path()))


@pytest.fixture(scope='module')
def documents():
    """The committed SST-2 slice as 800 documents of 10 real sentences."""
    sentences = [text.strip() for text, _ in SST2.read(os.path.join(REPO, 'data', 'sst2',
                                                                    'train.tsv'))]
    return [sentences[i:i + 10] for i in range(0, len(sentences), 10)]


@pytest.fixture(scope='module')
def built(tokenizer, documents):
    builder = PretrainingExampleBuilder(tokenizer, max_seq_length=128, dupe_factor=3, seed=1)
    return builder, builder.build(documents)


def unmasked(example):
    ids = example.input_ids.copy()
    n = int(example.masked_weights.sum())
    ids[example.masked_positions[:n]] = example.masked_ids[:n]
    return ids


def test_mlm_choices_are_80_10_10_and_15_percent(built):
    _, examples = built
    counts = dict(mask=0, kept=0, random=0)
    for ex in examples:
        n = int(ex.masked_weights.sum())
        length = int(ex.valid_length)
        assert n == min(20, max(1, int(round(length * 0.15))))
        current = ex.input_ids[ex.masked_positions[:n]]
        original = ex.masked_ids[:n]
        counts['mask'] += int(np.sum(current == MASK))
        counts['kept'] += int(np.sum(current == original))
        counts['random'] += int(np.sum((current != MASK) & (current != original)))
    total = sum(counts.values())
    assert total > 50000
    assert counts['mask'] / total == pytest.approx(0.8, abs=0.01)
    assert counts['random'] / total == pytest.approx(0.1, abs=0.01)
    assert counts['kept'] / total == pytest.approx(0.1, abs=0.01)


def test_next_sentence_labels_are_half_random(built):
    builder, examples = built
    labels = np.array([int(ex.next_sentence_label) for ex in examples])
    assert len(labels) > 4000
    assert labels.mean() == pytest.approx(0.5, abs=0.025)  # ~3.5 sigma
    assert builder.stats['random_next'] == labels.sum() == np.sum(labels == NOT_NEXT)
    assert 'random next' in builder.report()


def test_layout_of_every_example(built):
    _, examples = built
    for ex in examples:
        n = int(ex.valid_length)
        ids = unmasked(ex)
        assert len(ids) == len(ex.token_types) == n <= 128
        seps = np.nonzero(ids == SEP)[0].tolist()
        assert ids[0] == CLS and len(seps) == 2 and seps[1] == n - 1
        assert ex.token_types.tolist() == [0] * (seps[0] + 1) + [1] * (n - seps[0] - 1)
        k = int(ex.masked_weights.sum())
        positions = ex.masked_positions[:k]
        assert np.all(np.diff(positions) > 0) and not set(positions) & {0, *seps}
        assert not ex.masked_positions[k:].any() and not ex.masked_weights[k:].any()


def test_pairs_come_from_the_right_documents(built, tokenizer, documents):
    _, examples = built
    streams = [' ' + ' '.join(str(i) for s in doc for i in tokenizer.encode_ids(s)) + ' '
               for doc in documents]

    def homes(ids):
        needle = ' ' + ' '.join(str(i) for i in ids) + ' '
        return {d for d, stream in enumerate(streams) if needle in stream}
    checked = 0
    for ex in examples[:300]:
        ids = unmasked(ex)
        first_sep = int(np.argmax(ids == SEP))
        a, b = ids[1:first_sep], ids[first_sep + 1:-1]
        if len(ids) >= 128:
            continue  # may be truncated at the A/B junction
        if ex.next_sentence_label == IS_NEXT:
            assert homes(np.concatenate([a, b])), 'B does not follow A'
        else:
            assert homes(b) - homes(a), 'random B from the same document'
        checked += 1
    assert checked > 200


def test_seeded_and_reproducible(tokenizer, documents):
    def build(seed):
        return PretrainingExampleBuilder(tokenizer, seed=seed).build(documents[:50])
    first, again, other = build(7), build(7), build(8)
    assert len(first) == len(again)
    for x, y in zip(first, again):
        for field_x, field_y in zip(x, y):
            np.testing.assert_array_equal(field_x, field_y)
    assert any(not np.array_equal(x.input_ids, y.input_ids) for x, y in zip(first, other))


def test_whole_word_masking_masks_every_piece_of_a_word(tokenizer, documents):
    builder = PretrainingExampleBuilder(tokenizer, whole_word_masking=True, seed=2)
    examples = builder.build(documents[:300])
    continuation = builder._is_continuation
    split_words = 0
    for ex in examples:
        ids = unmasked(ex)
        masked = set(ex.masked_positions[:int(ex.masked_weights.sum())].tolist())
        for pos in range(1, len(ids)):
            if continuation[ids[pos]]:
                head = pos
                while continuation[ids[head]]:
                    head -= 1
                assert (pos in masked) == (head in masked), (ids[head:pos + 1], masked)
                split_words += pos in masked
    assert split_words > 50


def test_read_documents_and_errors(tmp_path, tokenizer):
    path = tmp_path / 'corpus.txt'
    path.write_text('First doc sentence one.\nSentence two.\n\n\nSecond doc.\n  \nThird doc.\n',
                    encoding='utf-8')
    assert read_documents(str(path)) == [['First doc sentence one.', 'Sentence two.'],
                                         ['Second doc.'], ['Third doc.']]
    with pytest.raises(ValueError, match='need at least 2 non-empty documents'):
        PretrainingExampleBuilder(tokenizer).build([['only one document']])


def test_batches_feed_bert_pretraining_heads(built, tokenizer):
    _, examples = built
    batch = batchify.Tuple(batchify.Pad(), batchify.Pad(), batchify.Stack(), batchify.Stack(),
                           batchify.Stack(), batchify.Stack(), batchify.Stack())(examples[:4])
    ids, types, valid, positions, masked_ids, weights, nsp = batch
    encoder = BERTEncoder(vocab_size=len(tokenizer.vocab), units=16, hidden_size=32, num_heads=2,
                          num_layers=1, max_length=128, dropout=0.0)
    model = BERTModel(encoder)
    model.initialize()
    _, _, nsp_logits, mlm_logits = model(ids, types, valid, positions)
    assert nsp_logits.shape == (4, 2) and mlm_logits.shape == (4, 20, len(tokenizer.vocab))
    assert positions.dtype == masked_ids.dtype == nsp.dtype == np.int32
    assert weights.dtype == np.float32
