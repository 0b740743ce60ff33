"""Token counting as GluonNLP 0.10's `data.utils` has it: `Counter` and `count_tokens`."""
import collections
from collections.abc import Hashable, Iterable


class Counter(collections.Counter):
    """A `collections.Counter` that can drop rare keys (`discard`), as GluonNLP's."""

    def discard(self, min_freq: int, unknown_token: Hashable) -> 'Counter':
        """A new Counter without keys seen fewer than min_freq times; their counts go to
        `unknown_token` (which is always a key of the result, as in GluonNLP)."""
        if min_freq < 1:
            raise ValueError(f'min_freq must be >= 1; got {min_freq}')
        kept = self.__class__()
        dropped = 0
        for token, freq in self.items():
            if freq >= min_freq:
                kept[token] += freq
            else:
                dropped += freq
        kept[unknown_token] += dropped
        return kept


def count_tokens(tokens: Iterable[Hashable], to_lower: bool = False,
                 counter: collections.Counter | None = None) -> collections.Counter:
    """Count tokens (lowercased when to_lower); adds to `counter` in place when one is given."""
    if counter is None:
        counter = Counter()
    elif not isinstance(counter, collections.Counter):
        raise TypeError(f'counter must be a collections.Counter; got {type(counter).__name__}')
    if to_lower:
        tokens = (token.lower() for token in tokens)
    counter.update(tokens)
    return counter
