"""Strict assignment of converted tensors to a gluonbert block, with complete mismatch reports."""
import numpy as np


class ConversionError(ValueError):
    """A checkpoint does not fit the model: names every missing, unexpected or mis-shaped tensor."""


def assign_parameters(block, arrays, allow_missing=False, allow_unexpected=False, source=''):
    """Copy `arrays` (structural name -> numpy array) into `block`'s initialized parameters.

    Every problem is collected before anything is written, so a failed load leaves the block
    untouched. Missing or unexpected tensors are errors unless explicitly allowed.
    Returns (missing, unexpected) name lists.
    """
    params = block._collect_params_with_prefix()
    missing = sorted(set(params) - set(arrays))
    unexpected = sorted(set(arrays) - set(params))
    problems = []
    for name in sorted(set(params) & set(arrays)):
        want, got = tuple(params[name].shape), tuple(np.shape(arrays[name]))
        if want != got:
            problems.append('{}: checkpoint has shape {}, model expects {}'.format(name, got, want))
    if missing and not allow_missing:
        problems.append('missing from the checkpoint ({}): {}'.format(len(missing),
                                                                     ', '.join(missing)))
    if unexpected and not allow_unexpected:
        problems.append('not in the model ({}): {}'.format(len(unexpected),
                                                          ', '.join(unexpected)))
    if problems:
        where = ' from {}'.format(source) if source else ''
        raise ConversionError('cannot load parameters{}:\n  '.format(where) +
                              '\n  '.join(problems))
    for name, param in params.items():
        if name in arrays:
            param.set_data(np.asarray(arrays[name], dtype=param.dtype))
    return missing, unexpected
