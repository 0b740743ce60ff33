"""Input side of BERT: vocabulary, tokenizer, transforms, batching."""
from .vocab import BERTVocab, bundled_vocab_path

__all__ = ['BERTVocab', 'bundled_vocab_path']
