"""The pretrained model store: verified files in a local cache, GluonNLP 0.10's file names.

`load_pretrained(model, dataset)` returns a Checkpoint for a (model, dataset) pair of the fact
tables: a GluonNLP-published `.params` found locally or fetched from $GLUONBERT_REPO, or an
embedded checkpoint converted from an installed package on first use.
"""
from ..convert.gluonnlp import read_params_checkpoint
from ..data.vocab import BERTVocab
from . import facts
from .embedded import load_embedded
from .download import FileLock, StoreError, default_root, fetch, sha1_of

__all__ = ['StoreError', 'default_root', 'fetch', 'list_pretrained', 'load_pretrained',
           'load_vocab', 'params_file_name', 'register_pretrained', 'vocab_file_name',
           'FileLock', 'sha1_of']


def list_pretrained():
    """Model name -> datasets with pretrained weights."""
    return facts.available()


def register_pretrained(model, dataset, params_sha1, vocab_sha1=None, vocab_ext='.vocab'):
    """Add a (model, dataset) pair with the sha1 of its `.params` (and of its vocabulary) to
    the fact tables, as GluonNLP's `model_store._model_sha1.update` did."""
    for sha1 in (params_sha1, vocab_sha1):
        if sha1 is not None and (len(sha1) != 40 or set(sha1) - set('0123456789abcdef')):
            raise ValueError('{!r} is not a hex sha1 (40 lowercase hex digits)'.format(sha1))
    facts.GLUONNLP_PARAMS[(model, dataset)] = params_sha1
    if vocab_sha1 is not None:
        facts.GLUONNLP_VOCABS[dataset] = (vocab_sha1, vocab_ext)


def params_file_name(model, dataset):
    """GluonNLP's name of a published parameter file: {model}_{dataset}-{sha1[:8]}.params."""
    return '{}_{}-{}.params'.format(model, dataset, facts.GLUONNLP_PARAMS[(model, dataset)][:8])


def vocab_file_name(dataset):
    """GluonNLP's name of a published vocabulary file: {dataset}-{sha1[:8]}.vocab."""
    sha1, ext = facts.GLUONNLP_VOCABS[dataset]
    return '{}-{}{}'.format(dataset, sha1[:8], ext)


def _embedded_source(dataset):
    for (model, name), source in facts.EMBEDDED.items():
        if name == dataset:
            return model, source
    return None, None


def load_vocab(dataset, root=None, **fetch_options):
    """The BERTVocab of a dataset: an embedded package's vocab.txt or GluonNLP's JSON vocab."""
    _, source = _embedded_source(dataset)
    if source is not None:
        from .embedded import verified_package_file  # pylint: disable=import-outside-toplevel
        return BERTVocab.from_file(verified_package_file(source, 'vocab.txt'))
    if dataset not in facts.GLUONNLP_VOCABS:
        raise ValueError('no vocabulary is known for dataset {!r}; known: {}'.format(
            dataset, ', '.join(sorted(set(facts.GLUONNLP_VOCABS) |
                                      {d for _, d in facts.EMBEDDED}))))
    sha1, ext = facts.GLUONNLP_VOCABS[dataset]
    if ext != '.vocab':
        raise StoreError('the vocabulary of {!r} is a SentencePiece model ({}), which gluonbert '
                         'cannot read; pass vocab=BERTVocab(...) with its tokens in id order'
                         .format(dataset, ext))
    path = fetch(vocab_file_name(dataset), sha1, 'vocab', root=root, **fetch_options)
    return BERTVocab.from_json(path)


def load_pretrained(model, dataset, num_heads, root=None, vocab=None, **fetch_options):
    """Checkpoint of a known (model, dataset) pair, from the store.

    num_heads: of the model being loaded (GluonNLP files carry no config).
    vocab: a BERTVocab to use instead of the dataset's (then it is not fetched).
    fetch_options: repo, retries, retry_wait, timeout (see `fetch`).
    """
    if (model, dataset) in facts.EMBEDDED:
        return load_embedded(model, dataset, facts.EMBEDDED[(model, dataset)], root, vocab)
    if (model, dataset) not in facts.GLUONNLP_PARAMS:
        known = facts.available()
        raise ValueError('no pretrained weights for {!r} on dataset {!r}; {}'.format(
            model, dataset, 'available datasets for {}: {}'.format(model, ', '.join(known[model]))
            if model in known else 'models with pretrained weights: {}'.format(
                ', '.join(known))))
    path = fetch(params_file_name(model, dataset), facts.GLUONNLP_PARAMS[(model, dataset)],
                 'params', root=root, **fetch_options)
    if vocab is None:
        vocab = load_vocab(dataset, root, **fetch_options)
    return read_params_checkpoint(path, num_heads, vocab)
