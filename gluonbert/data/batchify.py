"""Batchify functions: combine a list of samples into a batch of MXNet NDArrays.

Same names, arguments, errors and warnings as GluonNLP 0.10's `data.batchify`, with two
differences: integer inputs stay integer (GluonNLP's Pad turned Python lists into float32), and
Pad's padding value defaults to 0 explicitly (no warning). Outputs live on mx.cpu(); MXNet's
DataLoader moves worker batches through shared memory by itself.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import mxnet as mx
import numpy as np
from numpy.typing import DTypeLike

__all__ = ['Stack', 'Pad', 'Tuple', 'List', 'Dict', 'NamedTuple']


def _as_numpy(sample):
    if isinstance(sample, mx.nd.NDArray):
        return sample.asnumpy()
    return np.asarray(sample)


def _check_dtype(arrays, what):
    kinds = {a.dtype.kind for a in arrays}
    if not kinds <= set('biuf'):
        raise TypeError(f'{what} can only batch numbers; got dtype(s) '
                        f'{sorted({str(a.dtype) for a in arrays})}')


class Stack:
    """Stack samples of equal shape: N x (d1, ...) -> NDArray (N, d1, ...).

    dtype: output dtype; None keeps the inputs' (Python ints -> int32, floats -> float32
    unless the inputs were float64 numpy arrays).
    """

    def __init__(self, dtype: DTypeLike = None):
        self.dtype = dtype

    def __call__(self, data: Sequence[Any]) -> mx.nd.NDArray:
        if len(data) == 0:
            raise ValueError('Stack got an empty list of samples')
        arrays = [_as_numpy(x) for x in data]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f'Stack needs samples of one shape; got {sorted(shapes)} (use Pad for '
                             'variable-length samples)')
        _check_dtype(arrays, 'Stack')
        dtype = self.dtype or _infer_dtype(data, arrays)
        return mx.nd.array(np.stack(arrays).astype(dtype, copy=False), dtype=dtype)


class Pad:
    """Pad samples along `axis` to the longest (rounded up to `round_to`) and stack them.

    N x (..., L_i, ...) -> NDArray (N, ..., L, ...); with ret_length=True also the int32
    lengths (N,). pad_val: fill value (0). dtype: None keeps the inputs' (see Stack).
    """

    def __init__(self, axis: int = 0, pad_val: float | None = 0, ret_length: bool = False,
                 dtype: DTypeLike = None, round_to: int | None = None):
        if not isinstance(axis, numbers.Integral):
            raise TypeError(f'axis must be an int; got {axis!r}')
        if round_to is not None and (not isinstance(round_to, numbers.Integral) or round_to < 1):
            raise ValueError(f'round_to must be a positive int or None; got {round_to!r}')
        self.axis = axis
        self.pad_val = 0 if pad_val is None else pad_val
        self.ret_length = ret_length
        self.dtype = dtype
        self.round_to = round_to
        self._warned = False

    def __call__(self, data: Sequence[Any]
                 ) -> mx.nd.NDArray | tuple[mx.nd.NDArray, mx.nd.NDArray]:
        if len(data) == 0:
            raise ValueError('Pad got an empty list of samples')
        if isinstance(data[0], mx.nd.NDArray) and not self._warned:
            self._warned = True  # once per Pad, as GluonNLP does
            warnings.warn('Using Pad with NDArrays is discouraged for speed reasons. Instead you '
                          'should pad your data while it is still a list and before converting '
                          'to an NDArray. Alternatively you can consider inputting a '
                          'numpy.ndarray.', stacklevel=2)
        arrays = [_as_numpy(x) for x in data]
        ndims = {a.ndim for a in arrays}
        if len(ndims) > 1 or 0 in ndims:
            raise ValueError('Pad needs samples with the same number (>= 1) of dimensions; got '
                             f'{sorted(ndims)}')
        ndim = ndims.pop()
        axis = self.axis if self.axis >= 0 else self.axis + ndim
        if not 0 <= axis < ndim:
            raise ValueError(f'axis={self.axis} is out of range for samples with {ndim} dimensions')
        others = {a.shape[:axis] + a.shape[axis + 1:] for a in arrays}
        if len(others) > 1:
            raise ValueError(f'Pad samples may differ only along axis {self.axis}; got shapes '
                             f'{sorted({a.shape for a in arrays})}')
        _check_dtype(arrays, 'Pad')
        dtype = self.dtype or _infer_dtype(data, arrays)
        lengths = [a.shape[axis] for a in arrays]
        size = max(lengths)
        if self.round_to is not None:
            size = self.round_to * math.ceil(size / self.round_to)
        shape = list(arrays[0].shape)
        shape[axis] = size
        out = np.full([len(arrays)] + shape, self.pad_val, dtype=dtype)
        for i, array in enumerate(arrays):
            index = [i] + [slice(None)] * ndim
            index[axis + 1] = slice(0, array.shape[axis])
            out[tuple(index)] = array
        batch = mx.nd.array(out, dtype=dtype)
        if self.ret_length:
            return batch, mx.nd.array(lengths, dtype=np.int32)
        return batch


def _infer_dtype(data, arrays):
    """Keep numpy/NDArray dtypes; Python numbers become int32 (ints) or float32 (floats)."""
    first = data[0]
    if isinstance(first, (np.ndarray, np.generic, mx.nd.NDArray)):
        return np.result_type(*arrays)
    kind = np.result_type(*arrays).kind
    if kind in 'iu':
        info = np.iinfo(np.int32)
        fits = all(a.size == 0 or (info.min <= a.min() and a.max() <= info.max) for a in arrays)
        return np.int32 if fits else np.int64
    if kind == 'b':
        return np.bool_
    return np.float32


class Tuple:
    """Apply one batchify function per field of tuple samples: Tuple(Pad(), Stack(), ...)."""

    def __init__(self, fn: Callable | Sequence[Callable], *args: Callable):
        fns = list(fn) if isinstance(fn, (list, tuple)) else [fn]
        fns.extend(args)
        for i, f in enumerate(fns):
            if not callable(f):
                raise TypeError(f'batchify function {i} is not callable: {f!r}')
        self.fns = fns

    def __call__(self, data: Sequence[Sequence[Any]]) -> tuple:
        for sample in data:
            if len(sample) != len(self.fns):
                raise ValueError(f'Tuple has {len(self.fns)} batchify functions but a sample has '
                                 f'{len(sample)} fields')
        return tuple(fn([sample[i] for sample in data]) for i, fn in enumerate(self.fns))


class List:
    """Keep the samples as a Python list (no batching)."""

    def __call__(self, data: Sequence[Any]) -> list:
        return list(data)


def _check_callables(named_fns):
    """(name, fn) pairs -> ValueError naming the first fn that is not callable."""
    for name, fn in named_fns:
        if not callable(fn):
            raise ValueError(f'the batchify function for {name!r} is not callable: {fn!r}')


class Dict:
    """Batch dict samples field by field: Dict({'ids': Pad(), 'label': Stack()})."""

    def __init__(self, fn_dict: dict[Hashable, Callable]):
        # ValueError, not TypeError, for bad arguments: GluonNLP's Dict and NamedTuple raise it.
        if not isinstance(fn_dict, dict):
            raise ValueError(f'Dict needs a dict of batchify functions; got '
                             f'{type(fn_dict).__name__} (use Tuple for a list of functions)')
        _check_callables(fn_dict.items())
        self.fn_dict = fn_dict

    def __call__(self, data: Sequence[Mapping]) -> dict:
        out = {}
        for key, fn in self.fn_dict.items():
            try:
                out[key] = fn([sample[key] for sample in data])
            except KeyError:
                raise KeyError(f'a sample has no field {key!r} (it has '
                               f'{sorted(next(s for s in data if key not in s))})') from None
        return out


class NamedTuple:
    """Batch namedtuple samples field by field into the same namedtuple type.

    fn_info: a dict field -> batchify function, or one function per field in order.
    """

    def __init__(self, container: type[tuple],
                 fn_info: Mapping[str, Callable] | Sequence[Callable]):
        fields = container._fields
        if isinstance(fn_info, dict):
            if set(fn_info) != set(fields):
                raise ValueError(f'fn_info keys {sorted(fn_info)} must be the fields '
                                 f'{list(fields)} of {container.__name__}')
            fns = [fn_info[name] for name in fields]
        else:
            fns = list(fn_info)
            if len(fns) != len(fields):
                raise ValueError(f'{container.__name__} has {len(fields)} fields but {len(fns)} '
                                 f'batchify functions were given')
        _check_callables(zip(fields, fns))
        self.container = container
        self.fns = fns

    def __call__(self, data: Sequence[tuple]) -> tuple:
        for sample in data:
            if not isinstance(sample, self.container):
                raise ValueError(f'NamedTuple({self.container.__name__}) got a '
                                 f'{type(sample).__name__}')
        return self.container(*[fn([sample[i] for sample in data])
                                for i, fn in enumerate(self.fns)])


def bert_inputs(label_dtype: DTypeLike = None) -> Tuple:
    """Batchify for (input_ids, token_types, valid_length[, label]) samples: ids and types
    padded with 0 to (batch, longest), lengths stacked to (batch,), all int32; a label column
    of `label_dtype` if given."""
    fields = [Pad(pad_val=0, dtype='int32'), Pad(pad_val=0, dtype='int32'), Stack('int32')]
    if label_dtype is not None:
        fields.append(Stack(label_dtype))
    return Tuple(*fields)
