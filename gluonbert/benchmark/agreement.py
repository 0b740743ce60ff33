"""No speed without the same answer: every variant's outputs against gluonbert fp32's."""
import sys

import numpy as np

from .variants import FP32_ATOL, LOOSE, OURS


class AgreementError(RuntimeError):
    """A variant's answer differs from gluonbert's fp32 one, so it is not timed."""


def compare(expected: list, got: list) -> dict:
    """Max |diff| of the sequence outputs (batch, seq_len, units) and the lowest cosine
    similarity of the pooled ones (batch, units)."""
    diff = float(np.max(np.abs(expected[0] - got[0])))
    a, b = expected[1], got[1]
    cosine = float(np.min(np.sum(a * b, axis=-1) /
                          (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))))
    return dict(max_abs_diff=diff, min_cosine=cosine)


def check_agreement(variant: str, expected: list, got: list, atol: float | None = FP32_ATOL,
                    min_cosine: float | None = None) -> dict:
    """Compare (sequence, pooled) outputs with gluonbert's -> their differences; AgreementError
    when the sequence output's max |diff| exceeds `atol` or a pooled output's cosine similarity
    is below `min_cosine` (either may be None): no speed without the same answer."""
    if [np.shape(a) for a in expected] != [np.shape(a) for a in got]:
        raise AgreementError(f'{variant}: output shapes {[np.shape(a) for a in got]} differ from '
                             f'gluonbert\'s {[np.shape(a) for a in expected]}')
    result = compare(expected, got)
    diff, cosine = result['max_abs_diff'], result['min_cosine']
    if (atol is not None and not diff <= atol) or \
            (min_cosine is not None and not cosine >= min_cosine):
        raise AgreementError(
            f'{variant} disagrees with gluonbert fp32: sequence output max |diff| {diff:.3g} '
            f'(limit {atol}), pooled output min cosine {cosine:.6f} (limit {min_cosine}); not '
            'timed: no speed without the same answer')
    return dict(result, atol=atol, cosine_limit=min_cosine, passed=True)


def agreement(runners: dict) -> dict:
    """Check every variant against gluonbert fp32 -> variant -> differences.

    An fp32 variant that disagrees raises AgreementError (a broken conversion must not be
    timed). An int8 or bf16 one is held to the looser LOOSE limits; if it misses them it is
    recorded as refused and removed from `runners`, so it is not timed but the other variants
    still are.
    """
    expected = runners[OURS](fetch=True)
    checks = {}
    for name in [n for n in runners if n != OURS]:
        got = runners[name](fetch=True)
        try:
            checks[name] = check_agreement(name, expected, got, **LOOSE.get(name, {}))
        except AgreementError as err:
            if name not in LOOSE:
                raise
            checks[name] = dict(compare(expected, got), cosine_limit=LOOSE[name]['min_cosine'],
                                passed=False, refused=str(err))
            del runners[name]
            print(f'REFUSED: {err}', file=sys.stderr)
    return checks
