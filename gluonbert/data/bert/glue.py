"""Truncate and join several token sequences into one BERT input (GluonNLP 0.10's
`data.bert.glue` helpers).

truncate_seqs_equal shares a token budget between sequences as equally as possible (for two
sequences this is Google's longest-first rule, see data.transforms.truncate_pair_lengths);
concat_sequences joins sequences with separators into tokens, segment ids and a mask.
"""
import numbers
from collections.abc import Sequence

__all__ = ['truncate_lengths_equal', 'truncate_seqs_equal', 'concat_sequences']


def truncate_lengths_equal(lengths: Sequence[int], max_len: int) -> list[int]:
    """Lengths kept when sequences share max_len tokens equally: sequences shorter than their
    share stay whole, the rest get equal shares (the leftover tokens go to the first ones)."""
    if not isinstance(max_len, numbers.Integral) or max_len < 0:
        raise ValueError(f'max_len must be an int >= 0; got {max_len!r}')
    lengths = [int(n) for n in lengths]
    if sum(lengths) <= max_len:
        return lengths
    kept = list(lengths)
    budget = max_len
    open_ids = list(range(len(lengths)))  # sequences whose length is not settled, in order
    while True:
        share, leftover = divmod(budget, len(open_ids))
        shortest = min(open_ids, key=lengths.__getitem__)  # the first one on ties
        if lengths[shortest] > share:
            break
        budget -= lengths[shortest]
        open_ids.remove(shortest)
    for rank, i in enumerate(open_ids):
        kept[i] = share + (rank < leftover)
    return kept


def truncate_seqs_equal(sequences: list, max_len: int) -> list:
    """Cut the ends of sequences so their total length is <= max_len, as equally as possible.

    Returns `sequences` itself when they fit, else a new list of prefixes in the same order.
    """
    if not isinstance(sequences, list):
        raise TypeError(f'sequences must be a list of sequences; got {type(sequences).__name__}')
    kept = truncate_lengths_equal([len(seq) for seq in sequences], max_len)
    if sum(kept) == sum(len(seq) for seq in sequences):
        return sequences
    return [seq[:n] for seq, n in zip(sequences, kept)]


def _per_item_masks(mask, groups, what):
    """An int mask, or one list of mask values per group -> one list per group."""
    if isinstance(mask, numbers.Integral):
        return [[mask] * len(group) for group in groups]
    if not isinstance(mask, list):
        raise TypeError(f'{what} must be an int or a list of lists of ints; got '
                        f'{type(mask).__name__}')
    sizes, mask_sizes = [len(g) for g in groups], [len(m) for m in mask]
    if len(mask) > len(groups) or any(a != b for a, b in zip(sizes, mask_sizes)):
        raise ValueError(f'{what} must give one value per item: item counts {sizes}, mask '
                         f'counts {mask_sizes}')
    return mask


def concat_sequences(seqs: list, separators: list, seq_mask: int | list = 0,
                     separator_mask: int | list = 1) -> tuple:
    """Join seqs[i] + separators[i] for every i -> (tokens, segment_ids, p_mask), three lists
    of one length. Segment id i marks the items of seqs[i] and separators[i]; p_mask holds
    seq_mask for sequence items and separator_mask for separators (ints, or lists of lists
    with one value per item). Either list may be longer: missing entries count as empty.
    """
    if len(seqs) == 0:
        raise ValueError('seqs is empty; give at least one sequence')
    seq_masks = _per_item_masks(seq_mask, seqs, 'seq_mask')
    separator_masks = _per_item_masks(separator_mask, separators, 'separator_mask')

    def entry(items, i):
        return list(items[i]) if i < len(items) else []

    tokens, segment_ids, p_mask = [], [], []
    for i in range(max(len(seqs), len(separators))):
        seq, separator = entry(seqs, i), entry(separators, i)
        tokens += seq + separator
        segment_ids += [i] * (len(seq) + len(separator))
        p_mask += entry(seq_masks, i) + entry(separator_masks, i)
    if len(p_mask) != len(tokens):
        raise ValueError(f'seq_mask and separator_mask give {len(p_mask)} values for '
                         f'{len(tokens)} tokens; give one value per item')
    return tokens, segment_ids, p_mask
