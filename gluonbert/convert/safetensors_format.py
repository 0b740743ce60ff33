"""Read and write the safetensors format with numpy alone.

Why not the `safetensors` package: the format is an 8-byte little-endian header length, a JSON
header ({name: {dtype, shape, data_offsets}}) and raw little-endian bytes, so reading it directly
costs a few lines, needs no torch and no compiled dependency, and lets us name the exact problem
in a damaged file (which tensor runs past the end of a truncated file).
The tests check this reader and writer against the `safetensors` package itself.
"""
import json
import os
import struct
from collections.abc import Mapping

import numpy as np

from ..files import atomic_open
from .common import ConversionError

_DTYPES = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2',
           'I8': 'i1', 'U8': 'u1', 'BOOL': '?', 'BF16': '<u2'}
_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items() if k != 'BF16'}
_MAX_HEADER = 100 * 1024 * 1024  # the format's own limit on the JSON header


def _bfloat16_to_float32(raw):
    """bfloat16 bit patterns (uint16) -> float32: bfloat16 is the top half of a float32."""
    return (raw.astype('<u4') << 16).view('<f4')


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a .safetensors file -> {name: numpy array} (BF16 becomes float32).

    Raises ConversionError naming the problem for a truncated or malformed file.
    """
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ConversionError(f'{path} is truncated: {size} bytes, shorter than the 8-byte '
                                  f'header '
                                  'length')
        (header_len,) = struct.unpack('<Q', prefix)
        if header_len > _MAX_HEADER or 8 + header_len > size:
            raise ConversionError(f'{path} is truncated or not a safetensors file: the header '
                                  f'claims '
                                  f'{header_len} bytes but the file has {size}')
        try:
            header = json.loads(f.read(header_len).decode('utf-8'))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConversionError(f'{path} has a corrupt safetensors header: {err}') \
                from None
    if not isinstance(header, dict):
        raise ConversionError(f'{path} has a corrupt safetensors header (not a JSON object)')
    header.pop('__metadata__', None)
    for name, info in header.items():
        if not isinstance(info, dict) or not {'dtype', 'shape', 'data_offsets'} <= set(info):
            raise ConversionError(f'{path} has a corrupt safetensors header entry for {name}: '
                                  f'{info!r}')
    data_start = 8 + header_len
    data = np.memmap(path, dtype=np.uint8, mode='r', offset=data_start) \
        if size > data_start else np.zeros(0, np.uint8)
    arrays = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        arrays[name] = _tensor(path, name, info, data, size - data_start)
    del data
    return arrays


def _tensor(path, name, info, data, data_size):
    dtype = info.get('dtype')
    if dtype not in _DTYPES:
        raise ConversionError('{}: tensor {} has dtype {!r}, which gluonbert cannot read '
                              '(supported: {})'.format(path, name, dtype, ', '.join(_DTYPES)))
    shape = tuple(info['shape'])
    begin, end = info['data_offsets']
    want = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[dtype]).itemsize
    if end - begin != want:
        raise ConversionError(f'{path}: tensor {name} of shape {shape} and dtype {dtype} needs '
                              f'{want} bytes but its '
                              f'offsets span {end - begin}')
    if end > data_size:
        raise ConversionError(f'{path} is truncated: tensor {name} ends at byte {end} of the data '
                              f'section, '
                              f'which has only {data_size} bytes')
    values = np.array(data[begin:end]).view(_DTYPES[dtype]).reshape(shape)
    if dtype == 'BF16':
        values = _bfloat16_to_float32(values)
    return values.astype(values.dtype.newbyteorder('='), copy=False)


def write_safetensors(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write {name: numpy array} as a .safetensors file, atomically (temp file, then rename)."""
    header, offset, blobs = {}, 0, []
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        little = value.astype(value.dtype.newbyteorder('<'), copy=False)
        if little.dtype.str not in _NAMES and little.dtype != np.bool_:
            raise ValueError(f'cannot write tensor {name} of dtype {value.dtype} to safetensors')
        blob = little.tobytes()
        header[name] = dict(dtype=_NAMES.get(little.dtype.str, 'BOOL'), shape=list(value.shape),
                            data_offsets=[offset, offset + len(blob)])
        offset += len(blob)
        blobs.append(blob)
    header['__metadata__'] = dict(metadata or {'format': 'pt'})
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)  # pad so the data section starts 8-byte aligned
    with atomic_open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
