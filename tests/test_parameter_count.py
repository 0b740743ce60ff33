"""bert_12_768_12 has exactly HuggingFace bert-base-uncased's parameter count, computed live."""
import pytest

import gluonbert
from gluonbert.model import BERTEncoder, BERTModel
from gluonbert.registry import get_hparams

transformers = pytest.importorskip('transformers')
torch = pytest.importorskip('torch')


def hf_count(model_cls):
    """Unique parameters of a HuggingFace BERT (bert-base-uncased config), built on 'meta'."""
    with torch.device('meta'):
        model = model_cls(transformers.BertConfig())  # defaults are bert-base-uncased
    return sum(p.numel() for p in model.parameters())


def bert_base(**heads):
    """bert_12_768_12 with the bundled 30,522-token vocab, uninitialized: shapes suffice."""
    vocab = gluonbert.BERTVocab.from_file(gluonbert.data.bundled_vocab_path())
    assert len(vocab) == transformers.BertConfig().vocab_size == 30522
    encoder = BERTEncoder(**get_hparams('bert_12_768_12', vocab_size=len(vocab)))
    return BERTModel(encoder, **heads)


def test_bert_base_matches_hf_bert_model():
    model = bert_base(use_decoder=False, use_classifier=False)
    assert gluonbert.count_parameters(model) == hf_count(transformers.BertModel)


def test_bert_base_with_pretraining_heads_matches_hf_bert_for_pretraining():
    model = bert_base(use_pooler=True, use_decoder=True, use_classifier=True)
    assert gluonbert.count_parameters(model) == hf_count(transformers.BertForPreTraining)


def test_get_model_builds_the_same_count():
    model, _ = gluonbert.get_model('bert_2_128_2', pretrained=False, use_decoder=False,
                                   use_classifier=False)
    built = BERTModel(BERTEncoder(**get_hparams('bert_2_128_2', vocab_size=30522)),
                      use_decoder=False, use_classifier=False)
    assert gluonbert.count_parameters(model) == gluonbert.count_parameters(built) > 0
