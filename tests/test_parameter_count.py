"""bert_12_768_12 has exactly HuggingFace bert-base-uncased's parameter count, computed live."""
import pytest

import gluonbert

transformers = pytest.importorskip('transformers')
torch = pytest.importorskip('torch')


def hf_count(model_cls):
    """Unique parameters of a HuggingFace BERT (bert-base-uncased config), built on 'meta'."""
    with torch.device('meta'):
        model = model_cls(transformers.BertConfig())  # defaults are bert-base-uncased
    return sum(p.numel() for p in model.parameters())


def test_bert_base_matches_hf_bert_model():
    model, vocab = gluonbert.get_model('bert_12_768_12', use_decoder=False, use_classifier=False)
    assert len(vocab) == transformers.BertConfig().vocab_size == 30522
    assert gluonbert.count_parameters(model) == hf_count(transformers.BertModel)


def test_bert_base_with_pretraining_heads_matches_hf_bert_for_pretraining():
    model, _ = gluonbert.get_model('bert_12_768_12')
    assert gluonbert.count_parameters(model) == hf_count(transformers.BertForPreTraining)
