"""The pretrained model store: verified files in a local cache, GluonNLP 0.10's file names.

`load_pretrained(model, dataset)` returns a Checkpoint for a (model, dataset) pair of the fact
tables: a GluonNLP-published `.params` found locally or fetched from $GLUONBERT_REPO, else the
same Google weights from the HuggingFace Hub (see `hub`), or an embedded checkpoint; the last
two are converted into the store on first use.
"""
from __future__ import annotations

import os
from typing import Any

from ..convert.common import Checkpoint
from ..convert.gluonnlp import read_params_checkpoint
from ..data.vocab import BERTVocab
from . import facts
from .embedded import load_embedded
from .download import (REPO_ENV, FileLock, StoreError, default_root, fetch, find_verified,
                       gluonnlp_cache, sha1_of)
from .hub import hub_vocab, load_from_hub, resolve_hf_spec

__all__ = ['StoreError', 'default_root', 'fetch', 'list_pretrained', 'load_pretrained',
           'load_vocab', 'params_file_name', 'register_hub_pretrained', 'register_pretrained',
           'resolve_hf_spec', 'vocab_file_name', 'FileLock', 'sha1_of']


def list_pretrained() -> dict[str, list[str]]:
    """Model name -> datasets with pretrained weights."""
    return facts.available()


def register_pretrained(model: str, dataset: str, params_sha1: str, vocab_sha1: str | None = None,
                        vocab_ext: str = '.vocab') -> None:
    """Add a (model, dataset) pair with the sha1 of its `.params` (and of its vocabulary) to
    the fact tables, as GluonNLP's `model_store._model_sha1.update` did."""
    for sha1 in (params_sha1, vocab_sha1):
        if sha1 is not None and (len(sha1) != 40 or set(sha1) - set('0123456789abcdef')):
            raise ValueError(f'{sha1!r} is not a hex sha1 (40 lowercase hex digits)')
    facts.GLUONNLP_PARAMS[(model, dataset)] = params_sha1
    if vocab_sha1 is not None:
        facts.GLUONNLP_VOCABS[dataset] = (vocab_sha1, vocab_ext)


def register_hub_pretrained(model: str, dataset: str, repo: str, revision: str,
                            sha256: dict[str, str] | None = None) -> None:
    """Add a (model, dataset) pair served from HuggingFace Hub repository `repo` at
    `revision` (a commit, preferably), with optional pinned sha256s (file name -> sha256)."""
    facts.HUB[(model, dataset)] = facts.HubSource(repo, revision, dict(sha256 or {}))


def _gluonnlp_file_reachable(file_name, sha1, root, fetch_options):
    """True if GluonNLP's file is in a local cache, or a $GLUONBERT_REPO mirror is set."""
    if fetch_options.get('repo') or os.environ.get(REPO_ENV):
        return True
    folders = [default_root(root)]
    if fetch_options.get('search_gluonnlp_cache', True):
        folders.append(gluonnlp_cache())
    return find_verified(file_name, sha1, folders)[0] is not None


def _hub_source(dataset):
    return next((source for (_, name), source in facts.HUB.items() if name == dataset), None)


def params_file_name(model: str, dataset: str) -> str:
    """GluonNLP's name of a published parameter file: {model}_{dataset}-{sha1[:8]}.params."""
    return f'{model}_{dataset}-{facts.GLUONNLP_PARAMS[(model, dataset)][:8]}.params'


def vocab_file_name(dataset: str) -> str:
    """GluonNLP's name of a published vocabulary file: {dataset}-{sha1[:8]}.vocab."""
    sha1, ext = facts.GLUONNLP_VOCABS[dataset]
    return f'{dataset}-{sha1[:8]}{ext}'


def _embedded_source(dataset):
    for (model, name), source in facts.EMBEDDED.items():
        if name == dataset:
            return model, source
    return None, None


def load_vocab(dataset: str, root: str | None = None, **fetch_options: Any) -> BERTVocab:
    """The BERTVocab of a dataset: an embedded package's vocab.txt, GluonNLP's JSON vocab, or
    for a dataset only on the HuggingFace Hub, its vocab.txt. (GluonNLP's datasets keep
    GluonNLP's vocabulary: the Hub's vocab.txt is Google's token order, which GluonNLP's
    conversion did not keep for every token, so reading a GluonNLP `.params` with it could
    silently scramble rows of the embedding.)"""
    _, source = _embedded_source(dataset)
    if source is not None:
        from .embedded import verified_package_file
        return BERTVocab.from_file(verified_package_file(source, 'vocab.txt'))
    if dataset not in facts.GLUONNLP_VOCABS and _hub_source(dataset) is not None:
        return hub_vocab(_hub_source(dataset))
    if dataset not in facts.GLUONNLP_VOCABS:
        raise ValueError('no vocabulary is known for dataset {!r}; known: {}'.format(
            dataset, ', '.join(sorted(set(facts.GLUONNLP_VOCABS) |
                                      {d for _, d in facts.EMBEDDED} |
                                      {d for _, d in facts.HUB}))))
    sha1, ext = facts.GLUONNLP_VOCABS[dataset]
    if ext != '.vocab':
        raise StoreError(f'the vocabulary of {dataset!r} is a SentencePiece model ({ext}), which '
                         f'gluonbert '
                         'cannot read; pass vocab=BERTVocab(...) with its tokens in id order')
    path = fetch(vocab_file_name(dataset), sha1, 'vocab', root=root, **fetch_options)
    return BERTVocab.from_json(path)


def load_pretrained(model: str, dataset: str, num_heads: int, root: str | None = None,
                    vocab: BERTVocab | None = None, **fetch_options: Any) -> Checkpoint:
    """Checkpoint of a known (model, dataset) pair, from the store.

    GluonNLP's `.params` when it is in a local cache or a $GLUONBERT_REPO mirror is set; else,
    for pairs of facts.HUB, Google's weights from the HuggingFace Hub, converted into the store
    once (with the checkpoint's own vocab.txt, whose token order may differ from GluonNLP's).
    num_heads: of the model being loaded (GluonNLP files carry no config).
    vocab: a BERTVocab to use instead of the dataset's (then it is not fetched).
    fetch_options: repo, retries, retry_wait, timeout (see `fetch`).
    """
    if (model, dataset) in facts.EMBEDDED:
        return load_embedded(model, dataset, facts.EMBEDDED[(model, dataset)], root, vocab)
    if (model, dataset) in facts.HUB and (
            (model, dataset) not in facts.GLUONNLP_PARAMS or not _gluonnlp_file_reachable(
                params_file_name(model, dataset), facts.GLUONNLP_PARAMS[(model, dataset)], root,
                fetch_options)):
        try:
            return load_from_hub(model, dataset, facts.HUB[(model, dataset)], root, vocab)
        except StoreError as err:
            if (model, dataset) not in facts.GLUONNLP_PARAMS:
                raise
            raise StoreError(f'{err}; or copy GluonNLP 0.10\'s {params_file_name(model, dataset)} '
                             f'into {default_root(root)}, or set {REPO_ENV} to a mirror of '
                             f'GluonNLP\'s files') from None
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
